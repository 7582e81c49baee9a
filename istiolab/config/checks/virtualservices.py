"""VirtualServices: routes that never fire, host conflicts, weights, repeated and deprecated forms.

Anchors: istio/istio ``pkg/config/validation/validation.go`` (``ValidateVirtualService``: ``*``
bound to the mesh, "http, tcp or tls must be provided"), ``pkg/config/analysis/analyzers/
virtualservice/conflictingmeshgatewayhosts.go`` (IST0109), the IST0130/IST0131 messages (istioctl
reports them from ``pkg/config/validation``'s ``analyzeUnreachableHTTPRules``), ``analyzers/
deprecation/deprecation.go`` (IST0002), ``analyzers/virtualservice/destinationhosts.go``
(``analyzeSubset``, IST0140); kiali/kiali ``business/checkers/virtualservices/route_checker.go``
(KIA1104, KIA1105), ``single_host_checker.go`` (KIA1106), ``no_gateway_checker.go`` (KIA1108
``name.namespace``).

The shadowing check is indexed by match shape (see :class:`ShadowIndex`), so a VirtualService of
10 000 routes costs about 10 000 lookups, not 50 million comparisons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterator

from istiolab.config.checks.context import Context
from istiolab.config.hosts import fqdn, gateway_ref
from istiolab.config.matching import covers, is_catch_all_match
from istiolab.config.model import HTTPMatchRequest, HTTPRoute, StringMatch, VirtualService

Block = HTTPMatchRequest | None


def check(ctx: Context) -> None:
    """Run the VirtualService checks."""
    seen: dict[tuple[str, str], VirtualService] = {}
    splits = subset_routing(ctx)
    for vs in ctx.virtual_services:
        gateway_without_subset(ctx, vs, splits)
        routes_present(ctx, vs)
        mesh_wildcard(ctx, vs)
        shadowing(ctx, vs)
        destinations(ctx, vs)
        deprecated(ctx, vs)
        host_conflicts(ctx, vs, seen)


def bindings(vs: VirtualService) -> list[str]:
    """The gateways a VirtualService applies to (``mesh`` when none are listed)."""
    out = []
    for ref in vs.spec.gateways or ["mesh"]:
        if ref == "mesh":
            out.append("mesh")
        else:
            ns, name = gateway_ref(ref, vs.namespace)
            out.append(f"{ns}/{name}")
    return out


def routes_present(ctx: Context, vs: VirtualService) -> None:
    """``http``, ``tls`` or ``tcp`` is given (``ValidateVirtualService``)."""
    if not (vs.spec.http or vs.spec.tls or vs.spec.tcp):
        ctx.add(
            "IL224",
            vs,
            ("spec",),
            f"VirtualService {vs.name!r} has no http, tls or tcp routes; Istio rejects it "
            "('http, tcp or tls must be provided in virtual service')",
            "add an http route, or delete the VirtualService",
        )


def mesh_wildcard(ctx: Context, vs: VirtualService) -> None:
    """Host ``*`` is refused for a VirtualService bound to the mesh."""
    if "mesh" not in bindings(vs):
        return
    for i, host in enumerate(vs.spec.hosts):
        if host == "*":
            ctx.add(
                "IL223",
                vs,
                ("spec", "hosts", i),
                "host '*' with the mesh gateway (no gateways listed, or 'mesh'): Istio rejects it "
                "('wildcard host * is not allowed for virtual services bound to the mesh "
                "gateway')",
                "list the gateway (e.g. gateways: [my-gateway]), or name the hosts",
            )


def host_conflicts(
    ctx: Context, vs: VirtualService, seen: dict[tuple[str, str], VirtualService]
) -> None:
    """One host in two VirtualServices on one gateway or the mesh (IST0109, KIA1106)."""
    for gw in bindings(vs):
        for i, host in enumerate(vs.spec.hosts):
            key = (gw, fqdn(host, vs.namespace) if gw == "mesh" else host)
            first = seen.setdefault(key, vs)
            if first is vs:
                continue
            if gw == "mesh":
                what = (
                    "for the mesh Istio keeps one of them, so the other's routes are ignored "
                    "(IST0109)"
                )
            else:
                what = (
                    f"on gateway {gw} Istio merges their routes in creation order, so which "
                    "route wins depends on which was applied first"
                )
            ctx.add(
                "IL225",
                vs,
                ("spec", "hosts", i),
                f"host {host!r} is also in VirtualService {first.namespace}/{first.name}; {what}",
                "merge the two VirtualServices into one (or split the hosts between them)",
            )


def destinations(ctx: Context, vs: VirtualService) -> None:
    """Single weights and repeated destinations (KIA1104, KIA1105)."""
    for i, route in enumerate(vs.spec.http or []):
        dests = route.route or []
        if len(dests) == 1 and dests[0].weight is not None and dests[0].weight != 100:
            ctx.add(
                "IL226",
                vs,
                ("spec", "http", i, "route", 0, "weight"),
                f"the only destination has weight {dests[0].weight}; it gets 100 % of the "
                "traffic anyway",
                "remove the weight (or set 100), or add the destination that should get the rest",
            )
        seen: dict[tuple[str, str, int | None], int] = {}
        for j, d in enumerate(dests):
            dest = d.destination
            key = (
                fqdn(dest.host, vs.namespace),
                dest.subset or "",
                dest.port.number if dest.port else None,
            )
            if key in seen:
                sub = f" subset {dest.subset!r}" if dest.subset else ""
                ctx.add(
                    "IL227",
                    vs,
                    ("spec", "http", i, "route", j, "destination"),
                    f"host {dest.host!r}{sub} is already route[{seen[key]}] of this route",
                    f"merge route[{j}] into route[{seen[key]}] and add up their weights",
                )
            else:
                seen[key] = j


def deprecated(ctx: Context, vs: VirtualService) -> None:
    """Deprecated forms (IST0002 Deprecated; KIA1108 for ``name.namespace`` gateways)."""
    for g, ref in enumerate(vs.spec.gateways or []):
        _gateway_name(ctx, vs, ("spec", "gateways", g), ref)
    for i, route in enumerate(vs.spec.http or []):
        base = ("spec", "http", i)
        delay = route.fault.delay if route.fault else None
        if delay is not None and delay.percent is not None:
            ctx.add(
                "IL228",
                vs,
                (*base, "fault", "delay", "percent"),
                f"fault.delay.percent ({delay.percent}) is deprecated",
                f"write percentage: {{value: {delay.percent}}}",
            )
        if route.mirror_percent is not None:
            ctx.add(
                "IL228",
                vs,
                (*base, "mirrorPercent"),
                f"mirrorPercent ({route.mirror_percent}) is deprecated",
                f"write mirrorPercentage: {{value: {route.mirror_percent}}}",
            )
        for j, m in enumerate(route.match or []):
            for k, ref in enumerate(m.gateways or []):
                _gateway_name(ctx, vs, (*base, "match", j, "gateways", k), ref)


def _gateway_name(ctx: Context, vs: VirtualService, path: tuple[str | int, ...], ref: str) -> None:
    if ref == "mesh" or "/" in ref or "." not in ref:
        return
    ns, name = gateway_ref(ref, vs.namespace)
    # istiod still routes it: pilot/pkg/model/config.go resolveGatewayName turns 'name.ns'
    # (and 'name.ns.svc.cluster.local') into 'ns/name' "for backward compatibility only". But
    # current istioctl analyze does not (pkg/config/analysis/analyzers/virtualservice/
    # gateways.go reads the reference as a name in the VirtualService's namespace and reports
    # IST0101), so the form is a warning: it works today and current tooling calls it broken.
    ctx.add(
        "IL228",
        vs,
        path,
        f"gateway {ref!r} uses the old 'name.namespace' form: istiod still resolves it to "
        f"'{ns}/{name}' (backward compatibility only), but current Istio's istioctl analyze "
        "does not resolve it and reports the gateway as not found",
        f"write it as '{ns}/{name}'",
    )


def subset_routing(ctx: Context) -> dict[str, list[VirtualService]]:
    """Host → VirtualServices that route that host, one of their own, to a subset."""
    # destinationhosts.go initVirtualServiceDestinations: a destination with a subset whose host
    # is one of the VirtualService's hosts
    out: dict[str, list[VirtualService]] = defaultdict(list)
    for vs in ctx.virtual_services:
        own = {fqdn(h, vs.namespace) for h in vs.spec.hosts}
        hit = {
            fqdn(d.destination.host, vs.namespace)
            for route in vs.spec.http or []
            for d in route.route or []
            if d.destination.subset
        }
        for host in sorted(own & hit):
            out[host].append(vs)
    return out


def gateway_without_subset(
    ctx: Context, vs: VirtualService, splits: dict[str, list[VirtualService]]
) -> None:
    """A gateway route without subset to a host that a mesh VirtualService splits (IST0140)."""
    # destinationhosts.go analyzeSubset; the splitting VirtualService is only counted when it
    # is not bound to one of this VirtualService's gateways (then its rules do apply there)
    gateways = set(bindings(vs)) - {"mesh"}
    if not gateways:
        return
    for i, route in enumerate(vs.spec.http or []):
        for j, d in enumerate(route.route or []):
            if d.destination.subset:
                continue
            host = fqdn(d.destination.host, vs.namespace)
            others = [
                o for o in splits.get(host, ()) if o is not vs and not gateways & set(bindings(o))
            ]
            if others:
                o = others[0]
                ctx.add(
                    "IL241",
                    vs,
                    ("spec", "http", i, "route", j, "destination", "host"),
                    f"{d.destination.host!r} is routed without a subset, and VirtualService "
                    f"{o.namespace}/{o.name} splits it by subset for the mesh only; requests "
                    f"through gateway {', '.join(sorted(gateways))} reach every version",
                    "route to a subset here too (e.g. subset: v1), or add the gateway to that "
                    "VirtualService's gateways",
                )


# -- shadowed and unreachable routes -------------------------------------------------------


def _is_catch_all(m: Block) -> bool:
    """A block every request satisfies wherever the VirtualService applies: compile stops there.

    Blocks restricted to some workloads (port, sourceLabels, gateways, sourceNamespace) are not
    counted: they are a catch-all only where they apply.
    """
    if m is not None and any((m.port, m.source_labels, m.gateways, m.source_namespace)):
        return False
    return is_catch_all_match(m)


def _matches_every_uri(u: StringMatch | None) -> bool:
    return (
        u is None
        or u.kind == "present"
        or (u.kind == "prefix" and u.value in ("", "/"))
        or (u.kind == "regex" and u.value == ".*")
    )


class ShadowIndex:
    """Earlier match blocks, indexed so that the blocks that may cover a new one are few.

    :func:`~istiolab.config.matching.covers` decides; the index only finds candidates, and
    never leaves out a block that could cover. A block is filed under its URI condition (any
    URI; exact value; prefix; regex; case-folded for ``ignoreUriCase``) and its first exact
    header condition. A new block looks up its own URI (for an exact or prefix URI: every
    prefix of it, the trie walk done as dictionary lookups) with no header and with each of its
    exact headers: a block that requires header ``h = v`` can only cover blocks that require it
    too.
    """

    def __init__(self) -> None:
        self._table: dict[Hashable, list[tuple[int, int, HTTPMatchRequest]]] = defaultdict(list)

    @staticmethod
    def _header_key(m: HTTPMatchRequest) -> tuple[str, str] | None:
        for name in sorted(m.headers or {}):
            sm = (m.headers or {})[name]
            if sm.kind == "exact":
                return (name, sm.value)
        return None

    @staticmethod
    def _uri_key(m: HTTPMatchRequest) -> Hashable:
        u = m.uri
        if _matches_every_uri(u):
            return ("any",)
        assert u is not None
        fold = bool(m.ignore_uri_case)
        value = u.value.lower() if fold else u.value
        return (u.kind, fold, value)

    def add(self, route: int, block: int, m: HTTPMatchRequest) -> None:
        """File a block of route *route*."""
        self._table[(self._uri_key(m), self._header_key(m))].append((route, block, m))

    def _uri_keys(self, b: HTTPMatchRequest) -> Iterator[Hashable]:
        yield ("any",)
        u = b.uri
        if u is None or u.kind == "present":
            return
        for fold in (False, True):
            value = u.value.lower() if fold else u.value
            if u.kind == "regex":
                yield ("regex", fold, value)
                continue
            if u.kind == "exact":
                yield ("exact", fold, value)
            for i in range(len(value) + 1):
                yield ("prefix", fold, value[:i])

    def first_cover(self, b: HTTPMatchRequest) -> tuple[int, int, HTTPMatchRequest] | None:
        """The earliest filed block that covers *b*, or None."""
        headers: list[tuple[str, str] | None] = [None]
        headers += [(n, sm.value) for n, sm in (b.headers or {}).items() if sm.kind == "exact"]
        best: tuple[int, int, HTTPMatchRequest] | None = None
        for uk in self._uri_keys(b):
            for hk in headers:
                for entry in self._table.get((uk, hk), ()):
                    if best is not None and entry[:2] >= best[:2]:
                        break  # each list is in route order
                    if covers(entry[2], b):
                        best = entry
                        break
        return best


def _condition(m: HTTPMatchRequest) -> str:
    """The condition of a covering block that decides, for the message."""
    if m.uri is not None and not _matches_every_uri(m.uri):
        return f"uri ({m.uri.kind} {m.uri.value!r})"
    for name in ("headers", "query_params", "without_headers"):
        value = getattr(m, name)
        if value:
            key = sorted(value)[0]
            field = {"query_params": "queryParams", "without_headers": "withoutHeaders"}.get(
                name, name
            )
            return f"{field}.{key} ({value[key].kind} {value[key].value!r})"
    for name in ("method", "authority", "scheme"):
        value = getattr(m, name)
        if value is not None:
            return f"{name} ({value.kind} {value.value!r})"
    if m.uri is not None:
        return f"uri ({m.uri.kind} {m.uri.value!r}, every path)"
    return "conditions (none on the request)"


def _name(route: HTTPRoute) -> str:
    return f" ({route.name!r})" if route.name else ""


def shadowing(ctx: Context, vs: VirtualService) -> None:
    """Routes after a catch-all (IST0130) and routes an earlier match covers (IST0131)."""
    routes = vs.spec.http or []
    index = ShadowIndex()
    catch_all_at: int | None = None
    for i, route in enumerate(routes):
        base = ("spec", "http", i)
        blocks: list[Block] = list(route.match) if route.match else [None]
        if catch_all_at is not None:
            ctx.add(
                "IL207",
                vs,
                base,
                f"http[{i}]{_name(route)} comes after http[{catch_all_at}]"
                f"{_name(routes[catch_all_at])}, which matches every request, so it is never used",
                f"move it before http[{catch_all_at}] or give http[{catch_all_at}] a match",
            )
            continue
        if i > 0:
            found = [index.first_cover(b) if b is not None else None for b in blocks]
            if all(f is not None for f in found):
                hits = [f for f in found if f is not None]
                k, j, m = min(hits, key=lambda h: h[:2])
                by = sorted({h[0] for h in hits})
                others = "" if by == [k] else f" (with http[{'], http['.join(map(str, by))}])"
                ctx.add(
                    "IL208",
                    vs,
                    base,
                    f"every request http[{i}]{_name(route)} matches is taken by earlier route "
                    f"http[{k}]{_name(routes[k])}{others}: its match[{j}].{_condition(m)} "
                    "covers this route's match",
                    f"move http[{i}] above http[{k}], or make http[{k}].match[{j}] narrower",
                )
        if any(_is_catch_all(b) for b in blocks):
            catch_all_at = i
        for j, b in enumerate(blocks):
            if b is not None:
                index.add(i, j, b)


__all__ = ["ShadowIndex", "bindings", "check"]
