"""What an Istio HTTP match block covers: catch-alls and match implication.

Both are decided on the configuration (``HTTPMatchRequest``), as istiod decides where to stop
generating routes: ``isCatchAllMatch`` in istio/istio ``pilot/pkg/networking/core/route/route.go``
(a block with no uri, or a uri of prefix ``/`` or regex ``.*``, and no header, query, method,
authority or scheme condition). The compiler and the analyzer share these functions, so the
route the compiler stops at is the one the unreachable-route finding names.
"""

from __future__ import annotations

from istiolab.config.model import HTTPMatchRequest, StringMatch

__all__ = ["covers", "is_catch_all_match", "str_covers"]


def is_catch_all_match(m: HTTPMatchRequest | None) -> bool:
    """Whether every request satisfies the block's conditions (None: no match block at all).

    Workload filters (port, sourceLabels, gateways, sourceNamespace) decide whether a block
    applies to a proxy; they are not conditions on the request and are not looked at here.
    """
    if m is None:
        return True
    uri = m.uri
    uri_all = (
        uri is None
        or uri.kind == "present"
        or (uri.kind == "prefix" and uri.value == "/")
        or (uri.kind == "regex" and uri.value == ".*")
    )
    return uri_all and not any(
        (m.headers, m.without_headers, m.query_params, m.method, m.authority, m.scheme)
    )


def str_covers(a: StringMatch | None, b: StringMatch | None, *, fold: bool = False) -> bool:
    """Every value matching *b* also matches *a* (conservative: False when unsure)."""
    if a is None:
        return True
    if b is None:
        # Only a pattern that accepts every value covers "no condition".
        return (a.kind == "regex" and a.value == ".*") or (a.kind == "prefix" and a.value == "")
    av, bv = (a.value.lower(), b.value.lower()) if fold else (a.value, b.value)
    if a.kind == "present":
        return True
    if a.kind == "exact":
        return b.kind == "exact" and av == bv
    if a.kind == "prefix":
        return b.kind in ("exact", "prefix") and bv.startswith(av)
    if a.kind == "regex":
        return (b.kind == "regex" and av == bv) or av == ".*"
    return False


def _map_covers(a: dict[str, StringMatch] | None, b: dict[str, StringMatch] | None) -> bool:
    for key, am in (a or {}).items():
        bm = (b or {}).get(key)
        if bm is None:
            return False
        if am.kind != "present" and bm.kind == "present":
            return False
        if not str_covers(am, bm):
            return False
    return True


def _applies_to_every_request(m: HTTPMatchRequest) -> bool:
    """A catch-all that is not restricted to some workloads."""
    return not any((m.port, m.source_labels, m.gateways, m.source_namespace)) and (
        is_catch_all_match(m)
    )


def covers(a: HTTPMatchRequest | None, b: HTTPMatchRequest | None) -> bool:
    """Every request that matches *b* also matches *a* (conservative: False when unsure)."""
    if a is None or _applies_to_every_request(a):
        return True
    if b is None:
        return False
    fold = bool(a.ignore_uri_case)
    if b.ignore_uri_case and not a.ignore_uri_case and a.uri is not None:
        return False
    uri_all = a.uri is not None and a.uri.kind == "prefix" and a.uri.value == "/"
    if not uri_all and not str_covers(a.uri, b.uri, fold=fold):
        return False
    for name in ("scheme", "method", "authority"):
        if not str_covers(getattr(a, name), getattr(b, name)):
            return False
    if not _map_covers(a.headers, b.headers) or not _map_covers(a.query_params, b.query_params):
        return False
    # b excludes at least what a excludes: each "not am" must follow from b's "not bm".
    for key, am in (a.without_headers or {}).items():
        bm = (b.without_headers or {}).get(key)
        if bm is None or not str_covers(bm, am):
            return False
    if a.port is not None and a.port != b.port:
        return False
    if a.source_labels and not a.source_labels.items() <= (b.source_labels or {}).items():
        return False
    # b without gateways applies on every gateway of the VirtualService, maybe beyond a's.
    if a.gateways and not (b.gateways and set(b.gateways) <= set(a.gateways)):
        return False
    return not (a.source_namespace and a.source_namespace != b.source_namespace)
