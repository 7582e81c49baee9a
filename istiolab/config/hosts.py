"""Host names as Istio resolves them: short names, FQDNs, wildcards, gateway references."""

from __future__ import annotations

DOMAIN = "svc.cluster.local"


def fqdn(host: str, namespace: str, domain: str = DOMAIN) -> str:
    """Resolve a short service name in *namespace* to its FQDN (``reviews`` → ``reviews.ns.svc…``).

    Istio expands only names without a dot; ``reviews.default`` is taken literally (and then
    matches no service), which is why Istio recommends fully qualified names.
    """
    if host == "*" or host.startswith("*.") or "." in host:
        return host
    return f"{host}.{namespace}.{domain}"


def host_matches(pattern: str, host: str) -> bool:
    """Whether a gateway/VirtualService host *pattern* (``*``, ``*.example.com``) accepts *host*."""
    pattern = pattern.split("/", 1)[1] if "/" in pattern else pattern
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix)
    if host == "*":
        return False
    if host.startswith("*."):
        return False
    return False


def hosts_intersect(a: str, b: str) -> bool:
    """Whether two host patterns can both accept some host."""
    return host_matches(a, b) or host_matches(b, a)


def gateway_ref(ref: str, namespace: str) -> tuple[str, str]:
    """``ns/name`` or ``name`` (in *namespace*) → ``(namespace, name)``."""
    if "/" in ref:
        ns, name = ref.split("/", 1)
        return ns, name
    if "." in ref:  # legacy "name.namespace.svc.cluster.local" form
        parts = ref.split(".")
        return parts[1], parts[0]
    return namespace, ref


def server_host_for(server_host: str, namespace: str, gateway_namespace: str) -> str | None:
    """The host a Gateway server offers to VirtualServices of *namespace*, or None.

    A server host may carry a namespace (``prod/*.example.com``): ``*`` is every namespace,
    ``.`` the Gateway's own, anything else that one namespace (istio.io ``Server.hosts``).
    """
    if "/" not in server_host:
        return server_host
    ns, host = server_host.split("/", 1)
    if ns == "*" or ns == namespace or (ns == "." and namespace == gateway_namespace):
        return host
    return None
