"""Findings: what validation says about a config set.

Every problem in user input becomes a :class:`Finding` with a stable code from :data:`CODES`.
Codes are grouped: ``IL0xx`` loading, ``IL1xx`` schema, ``IL2xx`` semantics, ``IL3xx`` legacy
and conversion caveats, ``IL4xx`` scenario files. ``docs/findings.md`` is generated from
:data:`CODES` (``python -m istiolab.findings``) and a test keeps the two in sync.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any

from istiolab.reprs import HTMLRepr


class Severity(str, enum.Enum):
    """How bad a finding is. Only ``ERROR`` makes ``istiolab lint`` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclasses.dataclass(frozen=True)
class Code:
    """A documented finding code."""

    code: str
    severity: Severity
    title: str
    doc: str


def _c(code: str, sev: str, title: str, doc: str) -> Code:
    return Code(code, Severity(sev), title, doc)


CODES: dict[str, Code] = {
    c.code: c
    for c in [
        # -- loading
        _c("IL001", "error", "YAML syntax error", "The file is not valid YAML."),
        _c("IL002", "error", "document is not a mapping", "Each YAML document must be an object."),
        _c(
            "IL003",
            "error",
            "apiVersion or kind missing",
            "Every resource needs `apiVersion` and `kind`.",
        ),
        _c(
            "IL004",
            "warning",
            "unknown kind skipped",
            "istiolab does not model this (apiVersion, kind); it is skipped. "
            "`--strict` makes this an error.",
        ),
        _c("IL005", "error", "cannot read input", "A path given on the command line is missing."),
        _c("IL006", "error", "metadata.name missing", "Every resource needs `metadata.name`."),
        _c(
            "IL007",
            "error",
            "not a regular file",
            "An input is a device, a named pipe (FIFO) or a socket; it is refused before it is "
            "opened. Give regular files, or `-` for a pipe on standard input.",
        ),
        _c(
            "IL008",
            "error",
            "input too large",
            "A file, standard input or text is larger than the limit (8 MiB; see "
            "`docs/limits.md`). Split it, or raise `ISTIOLAB_MAX_FILE_BYTES`.",
        ),
        _c(
            "IL009",
            "error",
            "resource too large",
            "One document, or one item of a `List`, is larger than the limit (6 MiB). "
            "Split it, or raise `ISTIOLAB_MAX_DOCUMENT_BYTES`.",
        ),
        _c(
            "IL010",
            "error",
            "too many YAML nodes",
            "The input has more nodes than the limit (1.5 million) once aliases are expanded, "
            'as in a "billion laughs" document; the rest of the input is not read. Use fewer '
            "aliases, or raise `ISTIOLAB_MAX_NODES`.",
        ),
        _c(
            "IL011",
            "error",
            "nested too deep",
            "Sequences and mappings nest deeper than the limit (100 levels, aliases "
            "expanded). Flatten the structure.",
        ),
        _c(
            "IL012",
            "error",
            "not UTF-8",
            "The input is not valid UTF-8; the finding gives the byte offset. Save it as UTF-8.",
        ),
        _c(
            "IL013",
            "error",
            "YAML tag without JSON form",
            "A tag such as `!!binary`, `!!set`, `!!timestamp`, `!!omap` or a custom `!tag`: "
            "Kubernetes resources are JSON, so only strings, numbers, booleans, null, lists "
            "and maps are accepted. Remove the tag.",
        ),
        _c(
            "IL014",
            "error",
            "duplicate key",
            "A mapping has the same key twice; kubectl rejects it and YAML loaders silently "
            "keep the last. Remove one.",
        ),
        # -- schema
        _c("IL101", "error", "unknown field", "A field that the resource's schema does not have."),
        _c("IL102", "error", "missing required field", "A required field is absent."),
        _c("IL103", "error", "wrong type", "A field has a value of the wrong type."),
        _c("IL104", "error", "bad duration", "Durations are like `250ms`, `1.5s`, `1m` (≥ 1ms)."),
        _c(
            "IL105",
            "error",
            "percentage out of range",
            "Percentages are between 0 and 100.",
        ),
        _c(
            "IL106",
            "error",
            "HTTP status out of range",
            "HTTP status codes are between 200 and 599 (legacy 0.2: 0..600).",
        ),
        _c(
            "IL107",
            "error",
            "regex rejected by RE2",
            "Envoy and Istio use RE2; look-arounds and back-references are not supported.",
        ),
        _c(
            "IL108",
            "error",
            "invalid value",
            "A value outside the allowed set (enum), or a one-of with zero or several members.",
        ),
        _c(
            "IL109",
            "error",
            "invalid header name or value",
            "A header name that is not an RFC 9110 token (it has a space, colon, CR or LF; "
            "matches and hash keys may name the pseudo-headers `:authority`, `:method`, "
            "`:path`, `:scheme`, header operations only `:authority`), or a header value with "
            "CR, LF or NUL. Envoy and Istio refuse both. Also a control character (anything "
            "but tab) in a header operation value, a match value (`exact`, `prefix`) or a "
            "redirect or rewrite field: it would inject a header, or never match.",
        ),
        _c(
            "IL110",
            "error",
            "invalid resource name",
            "`metadata.name` is not an RFC 1123 subdomain (253 characters; a Service: an RFC 1035 "
            "label, 63), or `metadata.namespace` is not an RFC 1123 label (63): lower-case "
            "letters, digits and `-`. The Kubernetes API server refuses it.",
        ),
        _c(
            "IL111",
            "error",
            "regex too large for Envoy",
            "The regex's RE2 program is larger than Envoy's default limit of 100, so Envoy "
            "refuses the config. Simplify it, or raise the runtime key "
            "`re2.max_program_size.error_level`.",
        ),
        # -- semantics
        _c(
            "IL201",
            "error",
            "legacy route weights do not total 100",
            "Istio 0.2 rejects RouteRules whose `route[].weight` do not sum to 100 "
            "(a single route with weight 0 is allowed).",
        ),
        _c(
            "IL202",
            "error",
            "destination weights invalid for the profile",
            "Istio ≤ 1.14 requires weights that total 100; from 1.15 the total must be nonzero.",
        ),
        _c(
            "IL203",
            "error",
            "subset not defined",
            "A route names a subset that no DestinationRule for that host defines.",
        ),
        _c(
            "IL204",
            "warning",
            "subset labels match no Deployment",
            "A subset's labels select no pods of the Deployments given with the config.",
        ),
        _c(
            "IL205",
            "error",
            "duplicate resource",
            "Two resources have the same kind, namespace and name; the later one would replace "
            "the earlier.",
        ),
        _c(
            "IL206",
            "error",
            "host not served by gateway",
            "A VirtualService bound to a Gateway names a host that none of the Gateway's "
            "servers accept, so the gateway never routes it.",
        ),
        _c(
            "IL207",
            "warning",
            "unreachable route after catch-all",
            "An HTTP route after a route that matches every request is never used.",
        ),
        _c(
            "IL208",
            "warning",
            "route shadowed by an earlier route",
            "Every request this route matches is already taken by an earlier route.",
        ),
        _c(
            "IL209",
            "warning",
            "legacy precedence tie",
            "Two RouteRules for one destination share a precedence; Istio 0.2 leaves their "
            "order unspecified (istiolab orders them by name, as Pilot 0.2 did).",
        ),
        _c(
            "IL210",
            "warning",
            "gateway not found",
            "A VirtualService names a Gateway that is not in the config set.",
        ),
        _c(
            "IL211",
            "warning",
            "destination service unknown",
            "A route's destination host is not a Service of the config set (only checked when "
            "Services are given).",
        ),
        _c(
            "IL212",
            "error",
            "ingress backend service unknown",
            "An Ingress backend names a Service that is not in the config set (only checked "
            "when Services are given).",
        ),
        _c(
            "IL213",
            "error",
            "invalid combination",
            "Fields that cannot be used together (for example `redirect` with `route`).",
        ),
        # -- legacy and conversion caveats
        _c(
            "IL301",
            "warning",
            "legacy fault percent truncated",
            "Pilot 0.2 truncates fault percentages to an integer: 0.5 becomes 0, i.e. no fault.",
        ),
        _c(
            "IL302",
            "error",
            "exponentialDelay unsupported",
            "Istio never supported `exponentialDelay`; use `fixedDelay`.",
        ),
        _c(
            "IL303",
            "warning",
            "field needs Istio ≥ 0.3",
            "`mirror`, `corsPolicy` and `appendHeaders` were added to RouteRule in Istio 0.3.",
        ),
        _c(
            "IL304",
            "error",
            "Ingress path regex unsupported",
            "Istio's ingress turns only a trailing `.*` into a prefix; other regexes are rejected.",
        ),
        _c(
            "IL305",
            "warning",
            "source match not a runtime match",
            "A RouteRule's `match.source` selects which proxies get the rule; at the ingress it "
            "applies only to the istio-ingress pods. Conversion turns it into `sourceLabels` or "
            "`gateways`.",
        ),
        _c(
            "IL306",
            "warning",
            "dropped in conversion",
            "A legacy feature with no modern equivalent (l4Fault, TCP/UDP match, gRPC abort).",
        ),
        _c(
            "IL307",
            "info",
            "Ingress not for Istio",
            "The Ingress's class is not `istio`; Istio's controller ignores it (STRICT mode).",
        ),
        _c(
            "IL308",
            "info",
            "rate limit modelled approximately",
            "A Mixer quota (memquota) is modelled as a token bucket with the same rate; Mixer's "
            "rolling window and its fail-open on Mixer errors are not modelled.",
        ),
        _c(
            "IL309",
            "warning",
            "EnvoyFilter not understood",
            "Only the local rate limit EnvoyFilter is modelled; this one is kept but ignored.",
        ),
        _c(
            "IL310",
            "warning",
            "fault percent below resolution",
            "Envoy's fault percentages have a resolution of 0.0001 %; smaller values become 0.",
        ),
        _c(
            "IL311",
            "info",
            "legacy default made explicit",
            "Istio 0.2 had a 15 s route timeout and no default retries; conversion writes them "
            "out unless `--modern-defaults`.",
        ),
        _c(
            "IL312",
            "warning",
            "no effect at the ingress",
            "A field that the ingress ignores (e.g. fault injection through Kubernetes Ingress in "
            "Istio 0.2).",
        ),
        _c(
            "IL313",
            "warning",
            "not compiled",
            "A feature the route compiler does not model (delegate, gRPC abort, TLS/TCP routes); "
            "the simulator and the rendered Envoy config leave it out.",
        ),
        _c(
            "IL314",
            "warning",
            "rate limit not enforced",
            "A local rate limit whose `filter_enabled`/`filter_enforced` is missing or 0 %: "
            "Envoy's default for both is 0 %, so it counts but never rejects.",
        ),
        # -- scenarios
        _c("IL401", "error", "scenario invalid", "A scenario field is invalid."),
        _c(
            "IL402",
            "error",
            "run too large",
            "A scenario or sweep would create more requests, time-series intervals, pods, users "
            "or runs than the limits in docs/limits.md allow (estimated before it starts).",
        ),
    ]
}


@dataclasses.dataclass(frozen=True)
class Finding(HTMLRepr):
    """One problem found in user input.

    Attributes:
        code: Stable code, a key of :data:`CODES`.
        severity: Error, warning or info.
        resource: ``Kind/namespace/name`` of the resource (or the file when there is none).
        path: Dotted field path inside the resource, e.g. ``spec.http[0].route[1].weight``.
        message: What is wrong, naming the value.
        fix: What to do about it.
        file: Source file, when known.
        line: 1-based line in *file*, when known.
    """

    code: str
    severity: Severity
    resource: str
    path: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        """``file:line`` (or what is known of it)."""
        if self.file is None:
            return "-" if self.line is None else f"<input>:{self.line}"
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def format(self) -> str:
        """One-line human rendering."""
        where = f" {self.path}" if self.path else ""
        return (
            f"{self.location}: {self.severity.value} {self.code} {self.resource}{where}: "
            f"{self.message} (fix: {self.fix})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with the documented keys."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "resource": self.resource,
            "path": self.path,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
        }


def finding(
    code: str,
    resource: str,
    path: str,
    message: str,
    fix: str,
    *,
    severity: Severity | None = None,
    file: str | None = None,
    line: int | None = None,
) -> Finding:
    """Make a :class:`Finding` with the code's default severity."""
    return Finding(
        code=code,
        severity=severity or CODES[code].severity,
        resource=resource,
        path=path,
        message=message,
        fix=fix,
        file=file,
        line=line,
    )


def has_errors(findings: Iterable[Finding]) -> bool:
    """Tell whether any finding is an error."""
    return any(f.severity is Severity.ERROR for f in findings)


def suppress(findings: Iterable[Finding], codes: Iterable[str]) -> list[Finding]:
    """Drop findings whose code is in *codes*."""
    drop = {c.strip().upper() for c in codes if c.strip()}
    return [f for f in findings if f.code not in drop]


def render_docs() -> str:
    """Markdown for ``docs/findings.md``."""
    out = [
        "# Finding codes",
        "",
        "Generated from `istiolab/findings.py` by",
        "`python -m istiolab.findings > docs/findings.md`.",
        "Suppress a code for one resource with the annotation",
        '`istiolab.io/suppress: "IL207,IL209"`, or everywhere with',
        "`istiolab lint --suppress IL207`.",
        "",
        "| code | severity | title | meaning |",
        "|---|---|---|---|",
    ]
    for c in CODES.values():
        out.append(f"| {c.code} | {c.severity.value} | {c.title} | {c.doc} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_docs(), end="")
