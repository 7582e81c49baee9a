"""Cluster commands of the ``istiolab`` command line.

``cluster import``, ``diff``, ``apply`` and ``rollback``; :func:`register` adds them to the
``istiolab`` Typer app, and the Kubernetes client is imported only inside the commands. The
flags follow kubectl's where kubectl has one (``-f/--filename``, ``-k``, ``-o/--output``,
``--dry-run=server``, ``--field-manager``, ``--force-conflicts``, ``--server-side``, the ``-n``
mismatch refusal, ``diff --exit-code``); ``docs/cluster.md`` has them side by side.

Exit codes: 0 success; 1 refused or failed (error findings, field conflicts, objects the API
server rejected, RBAC denials, GitOps-managed objects, an apply that stopped midway, an
incomplete rollback, a declined confirmation); 2 usage errors, unreadable input, an output or
backup folder that cannot be written, or no cluster to talk to; 3 (``apply``) the cluster
changed after the plan was approved: nothing applied, the new diff is shown. ``diff
--exit-code``: 0 no differences, 1 differences, 2 anything else (refused or failed).
"""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SuppressOpt,
    check_writable,
    echo_findings,
    kustomize_build,
    load_config,
    say,
    split_codes,
    usage_error,
    write_or_echo,
    write_text,
)
from istiolab.errors import ClusterError, ConfigError, IstiolabError
from istiolab.findings import Finding, has_errors

if TYPE_CHECKING:
    from istiolab.config import ConfigSet
    from istiolab.kube.adapter import ClusterAdapter
    from istiolab.kube.apply import ApplyReport, RollbackPreview, RollbackReport
    from istiolab.kube.backups import BackupSet, BackupStore
    from istiolab.kube.plan import Plan, PlanStep

__all__ = ["EXIT_STALE", "register"]

EXIT_STALE = 3
"""``apply``: the cluster changed after the plan was approved; nothing was applied."""

SCHEMA = "istiolab.io/v1alpha1"
"""``apiVersion`` of the JSON/YAML reports (``-o json``); the schema is in docs/cluster.md."""

KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file. Default: $KUBECONFIG, then ~/.kube/config, then the pod's "
        "service account.",
    ),
]
ContextOpt = Annotated[
    str | None,
    typer.Option("--context", help="Kubeconfig context. Default: the current context."),
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace. Default: the context's. Objects that name another namespace are "
        "refused, as kubectl does.",
    ),
]
ValidationProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", "-p", help="Istio version for validation (default: newest; 0.2 for legacy)."
    ),
]
PathsOpt = Annotated[
    list[str] | None,
    typer.Argument(
        help="YAML files, directories or '-' (the same as -f; kept for earlier scripts).",
        show_default=False,
    ),
]
FilenameOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filename",
        "-f",
        help="File, directory (read recursively) or '-' for stdin; repeat for more.",
        show_default=False,
    ),
]
RecursiveOpt = Annotated[
    bool,
    typer.Option(
        "--recursive",
        "-R",
        help="Accepted for kubectl's sake: directories are always read recursively.",
    ),
]
KustomizeOpt = Annotated[
    Path | None,
    typer.Option(
        "--kustomize",
        "-k",
        help="Build this kustomization (`kustomize build`, else `kubectl kustomize`) and read "
        "its output.",
    ),
]
OutputOpt = Annotated[
    str,
    typer.Option("--output", "-o", help="Report format: table, json or yaml."),
]
OutputFileOpt = Annotated[
    Path | None,
    typer.Option("--output-file", help="Write the report (-o) to this file instead of stdout."),
]
FieldManagerOpt = Annotated[
    str,
    typer.Option(
        "--field-manager",
        help="Field manager of the writes; give each operator or pipeline its own, so that "
        "they conflict instead of silently overwriting each other.",
    ),
]
ForceConflictsOpt = Annotated[
    bool,
    typer.Option(
        "--force-conflicts",
        help="Take over the fields another field manager owns, exactly those the plan lists "
        '("taking over .spec.http from helm").',
    ),
]
DeprecatedForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Deprecated: use --force-conflicts (kubectl's --force deletes and re-creates).",
        hidden=True,
    ),
]
ServerSideOpt = Annotated[
    bool,
    typer.Option(
        "--server-side", help="Accepted for kubectl's sake: istiolab always applies server-side."
    ),
]
BackupDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--backup-dir",
        help="Backup root (may be shared by a team). Default: $ISTIOLAB_HOME/backups, else "
        "~/.istiolab/backups.",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _connect(
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    field_manager: str = "istiolab",
) -> ClusterAdapter:
    """The cluster to talk to (tests replace this with an in-memory cluster)."""
    from istiolab.kube.client import connect

    return connect(kubeconfig, context, namespace, field_manager=field_manager)


@contextlib.contextmanager
def _errors(failed: int = EXIT_FAILED) -> Iterator[None]:
    """Turn istiolab errors into a message and an exit code (never a traceback).

    Args:
        failed: The code of a refusal or failure (``diff --exit-code`` makes it 2).
    """
    from istiolab.kube.errors import BackupUnwritableError, ConnectError, StalePlanError

    try:
        yield
    except ConfigError as err:
        echo_findings(err.findings)
        say(
            f"refusing: the config has {len(err.findings)} error(s); nothing was sent to the "
            "cluster"
        )
        raise typer.Exit(failed) from None
    except (ConnectError, BackupUnwritableError) as err:
        say(str(err))
        raise typer.Exit(EXIT_USAGE) from None
    except StalePlanError as err:
        say(str(err))
        raise typer.Exit(EXIT_STALE) from None
    except ClusterError as err:
        say(str(err))
        raise typer.Exit(failed) from None
    except IstiolabError as err:
        say(str(err))
        raise typer.Exit(EXIT_USAGE) from None


def _store(backup_dir: Path | None) -> BackupStore:
    from istiolab.kube.backups import BackupStore

    return BackupStore(backup_dir)


def _show_warnings(findings: tuple[Finding, ...]) -> None:
    if findings:
        echo_findings(findings)


def _check_output(output: str, output_file: Path | None) -> None:
    if output not in ("table", "json", "yaml"):
        raise usage_error(f"-o/--output must be table, json or yaml, not {output!r}")
    check_writable(output_file, "--output-file")


def _field_manager(name: str) -> str:
    # kube-apiserver limits a field manager to 128 characters of printable ASCII
    if not name or len(name) > 128 or not all(" " < c < "\x7f" for c in name):
        raise usage_error(
            f"--field-manager {name[:40]!r}: 1 to 128 printable characters without spaces"
        )
    return name


def _force(force_conflicts: bool, force: bool) -> bool:
    if force:
        say(
            "--force is deprecated: use --force-conflicts (it does the same: take over fields "
            "another field manager owns; kubectl's --force deletes and re-creates instead)"
        )
    return force_conflicts or force


def _kustomize(directory: Path) -> str:
    """The output of ``kustomize build DIR`` (:func:`~istiolab.cli.common.kustomize_build`)."""
    return kustomize_build(directory)


def _inputs(
    paths: list[str] | None, filenames: list[str] | None, kustomize: Path | None
) -> ConfigSet:
    """The config set from positional paths, ``-f`` and ``-k``; exit 2 without any input."""
    from istiolab.config import loads

    files = [*(paths or []), *(filenames or [])]
    if not files and kustomize is None:
        raise usage_error("no input: pass -f FILE|DIR|- (repeatable) or -k DIR")
    config = load_config(files) if files else None
    if kustomize is not None:
        built = loads(_kustomize(kustomize), file=f"{kustomize}/ (kustomize build)")
        config = built if config is None else config + built
    assert config is not None
    return config


def _check_namespace(config: ConfigSet, namespace: str | None) -> None:
    """Refuse objects that name another namespace than ``-n``, with kubectl's words.

    kubectl (``k8s.io/cli-runtime`` ``pkg/resource``) refuses such input rather than applying
    to a namespace the operator did not name; so does istiolab (exit 2, nothing is sent).
    """
    if namespace is None:
        return
    for r in config:
        ns = r.metadata.namespace
        if ns and ns != namespace:
            raise usage_error(
                f"{r.key}: the namespace from the provided object {ns!r} does not match the "
                f"namespace {namespace!r}. You must pass '--namespace={ns}' to perform this "
                "operation (or leave -n out)"
            )


def _conflicts(items: tuple[Any, ...]) -> list[dict[str, str]]:
    return [{"field": c.field, "manager": c.manager} for c in items]


def _step_entry(
    step: PlanStep,
    *,
    backup_id: str | None = None,
    outcome: str | None = None,
    detail: str = "",
    error: str | None = None,
) -> dict[str, Any]:
    """One object of a JSON report (the schema in docs/cluster.md)."""
    return {
        "ref": step.ref,
        "kind": step.kind,
        "namespace": step.namespace,
        "name": step.name,
        "apiVersion": step.api_version,
        "action": step.action,
        "conflicts": _conflicts(step.conflicts),
        "takeover": _conflicts(step.takeover),
        "managedBy": None if step.managed is None else step.managed.to_dict(),
        "diff": step.diff,
        "backupId": backup_id,
        "outcome": outcome,
        "detail": detail or None,
        "error": error or step.error,
    }


def _plan_doc(p: Plan) -> dict[str, Any]:
    return {
        "apiVersion": SCHEMA,
        "kind": "Diff",
        "context": p.context,
        "namespace": p.namespace,
        "fieldManager": p.field_manager,
        "ok": p.ok,
        "changes": len(p.changes),
        "items": [_step_entry(s) for s in p.steps],
    }


def _apply_doc(p: Plan, report: ApplyReport | None, outcome: str) -> dict[str, Any]:
    items = (
        [
            _step_entry(
                r.step,
                backup_id=report.backup_id,
                outcome=r.outcome,
                detail=r.detail,
                error=r.error,
            )
            for r in report.results
        ]
        if report is not None
        else [_step_entry(s, outcome="not-attempted") for s in p.steps]
    )
    return {
        "apiVersion": SCHEMA,
        "kind": "Apply",
        "context": p.context,
        "namespace": p.namespace,
        "fieldManager": p.field_manager,
        "backupId": None if report is None else report.backup_id,
        "outcome": outcome,
        "ok": report is not None and report.ok,
        "items": items,
    }


def _emit(doc: dict[str, Any], output: str, output_file: Path | None) -> None:
    """The report as JSON or YAML on stdout, or in ``--output-file``."""
    if output == "table":
        return
    if output == "json":
        text = json.dumps(doc, indent=2) + "\n"
    else:
        from istiolab.config import codecs

        text = codecs.dumps([doc])
    if output_file is None:
        typer.echo(text, nl=False)
    else:
        write_text(output_file, text, "--output-file")


def _human(text: str, output: str) -> None:
    """Human text: stdout for ``-o table``, stderr when stdout carries JSON or YAML."""
    typer.echo(text, nl=False, err=output != "table")


def cluster_import(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="With --from-files: YAML files, directories (read recursively) or - (stdin).",
            show_default=False,
        ),
    ] = None,
    from_files: Annotated[
        bool,
        typer.Option(
            "--from-files",
            help="Read the objects from PATHS instead of a cluster (kubectl get -o yaml "
            "output, rendered manifests): the same import, no cluster needed.",
        ),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="yaml (the default: the scenario on stdout); a file name here is deprecated: "
            "use --output-file.",
        ),
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output-file", help="Write the scenario YAML here.")
    ] = None,
    config_out: Annotated[
        Path | None,
        typer.Option(
            "--config-out", help="Also write the routing resources (for lint, diff, apply)."
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    gateway_namespace: Annotated[
        str, typer.Option("--gateway-namespace", help="Namespace of the Istio ingress gateway.")
    ] = "istio-system",
    rate: Annotated[
        float, typer.Option("--rate", min=0.001, help="Rate of the placeholder traffic (req/s).")
    ] = 100.0,
) -> None:
    """Read a namespace of a cluster into a scenario (topology, services, AZs) and its rules.

    Nodes give the AZs and CPU, the ingress gateway's pods and Service the
    ingress pool and the AWS load balancer (NLB/CLB/ALB, target type,
    cross-zone, externalTrafficPolicy), Services and Deployments the
    backends (labels become subsets), and VirtualServices, DestinationRules,
    Gateways, EnvoyFilters, RouteRules and Ingresses the rules. The traffic
    is a placeholder (Poisson, 100 req/s): the YAML says so; replace it.

    With --from-files the objects come from YAML files instead (Nodes, the
    gateway's Deployment, Pods and Service, the namespace's workloads and
    routing), as a Binder user or a CI job has them. The gateway Service's
    AWS annotations are linted too (IL65x).

    Examples:

        istiolab cluster import -n shop --output-file shop.yaml --config-out rules.yaml

        istiolab cluster import --from-files cluster-dump/ gateway.yaml -n shop

        istiolab cluster import --context prod-eks -n shop --gateway-namespace ingress
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.config import dumps
    from istiolab.kube.importer import inspect_cluster

    if output is not None and output not in ("yaml", "table"):
        if output == "json":
            raise usage_error("cluster import writes YAML: -o yaml (or leave -o out)")
        say(f"-o FILE is deprecated for cluster import: use --output-file {output}")
        output_file = output_file or Path(output)
    check_writable(output_file, "--output-file")
    check_writable(config_out, "--config-out")
    if paths and not from_files:
        raise usage_error(f"cluster import takes no paths ({paths[0]!r}, ...) without --from-files")
    if from_files and not paths:
        raise usage_error("--from-files needs PATHS: files, directories or - for stdin")
    if from_files and (kubeconfig is not None or context is not None):
        raise usage_error("--from-files reads no cluster: leave out --kubeconfig and --context")
    with _errors():
        if from_files:
            from istiolab.kube.files import import_files

            result, _ = import_files(
                paths or [], namespace, gateway_namespace=gateway_namespace, rate_rps=rate
            )
        else:
            cluster = _connect(kubeconfig, context, namespace)
            result = inspect_cluster(
                cluster, namespace, gateway_namespace=gateway_namespace, rate_rps=rate
            )
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    write_or_echo(
        result.scenario_yaml(),
        output_file,
        f"wrote {output_file}: {len(result.scenario.services)} service(s), "
        f"{len(result.config)} routing resource(s), "
        f"AZs {', '.join(result.scenario.ingress.azs)}",
        option="--output-file",
    )
    if config_out is not None:
        write_text(config_out, dumps(result.config), "--config-out")
        typer.echo(f"wrote {len(result.config)} resource(s) to {config_out}", err=True)
    # Objects read from the cluster that do not validate are findings like any input's; the
    # import still writes what it could read, and says so with its exit code.
    findings = (*result.config.findings, *result.findings)
    _show_warnings(findings)
    if has_errors(findings):
        raise typer.Exit(EXIT_FAILED)


def diff_cmd(
    paths: PathsOpt = None,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    kustomize: KustomizeOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    profile: ValidationProfileOpt = None,
    suppress: SuppressOpt = None,
    output: OutputOpt = "table",
    output_file: OutputFileOpt = None,
    field_manager: FieldManagerOpt = "istiolab",
    force_conflicts: ForceConflictsOpt = False,
    force: DeprecatedForceOpt = False,
    server_side: ServerSideOpt = False,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code",
            help="Exit 0 without differences, 1 with differences, 2 when refused or failed "
            "(conflicts, rejected objects, error findings, RBAC, no cluster).",
        ),
    ] = False,
) -> None:
    """Show what `istiolab apply` would change: a server-side dry run of every object, diffed.

    The config is validated first (error findings refuse). Each object is
    sent to the API server with dryRun=All (schema, admission webhooks and
    field-manager conflicts are checked, nothing is stored) and the result
    is diffed against the live object as unified YAML, without
    server-managed fields. Objects managed by Argo CD, Flux or Helm are
    named ("commit to Git instead"). -o json gives one entry per object
    (the schema is in docs/cluster.md), for PR checks and policy gates.

    Examples:

        istiolab diff -f rules/ -n shop

        istiolab diff -f canary.yaml --context prod-eks --exit-code -o json
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.plan import plan

    failed = 2 if exit_code else EXIT_FAILED
    _check_output(output, output_file)
    manager = _field_manager(field_manager)
    take = _force(force_conflicts, force)
    config = _inputs(paths, filename, kustomize)
    _check_namespace(config, namespace)
    with _errors(failed):
        cluster = _connect(kubeconfig, context, namespace, manager)
        p = plan(config, cluster, profile=profile, force=take, suppress=split_codes(suppress))
    _show_warnings(p.findings)
    _human(p.format(diffs=True), output)
    _emit(_plan_doc(p), output, output_file)
    for s in p.managed:
        say(f"warning: {s.ref} is {s.managed.format() if s.managed else ''}")
    if not p.ok:
        raise typer.Exit(failed)
    raise typer.Exit(EXIT_FAILED if exit_code and p.changes else EXIT_OK)


def _dry_run_mode(value: str) -> str:
    if value not in ("none", "server", "client"):
        raise usage_error(f"--dry-run must be none or server, not {value!r}")
    if value == "client":
        raise usage_error(
            "--dry-run=client is not supported: istiolab dry-runs on the API server "
            "(--dry-run=server), which also runs admission and conflict checks"
        )
    return value


def _default_cause(files: list[str], kustomize: Path | None) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown user"
    what = " ".join([*(f"-f {f}" for f in files), *([f"-k {kustomize}"] if kustomize else [])])
    return f"istiolab apply {what} by {user}"


def apply_cmd(
    paths: PathsOpt = None,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    kustomize: KustomizeOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    dry_run: Annotated[
        str,
        typer.Option(
            "--dry-run",
            help="server: stop after the server-side dry run and change nothing (a bare "
            "--dry-run means server); none (default): apply.",
        ),
    ] = "none",
    yes: YesOpt = False,
    atomic: Annotated[
        bool,
        typer.Option(
            "--atomic",
            help="If an object fails, roll back what this apply changed, at once (without "
            "--atomic the apply stops there and, interactively, asks).",
        ),
    ] = False,
    force_conflicts: ForceConflictsOpt = False,
    force: DeprecatedForceOpt = False,
    server_side: ServerSideOpt = False,
    field_manager: FieldManagerOpt = "istiolab",
    allow_managed: Annotated[
        bool,
        typer.Option(
            "--allow-managed",
            help="Also change objects that Argo CD, Flux or Helm manage (break-glass; the "
            "controller may undo it at its next sync).",
        ),
    ] = False,
    change_cause: Annotated[
        str | None,
        typer.Option(
            "--change-cause",
            help="Why (annotated on every object written as istiolab.io/change-cause, with "
            "istiolab.io/backup-id). Default: the command and the user.",
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=1, help="Keep only the newest N backup sets of the context."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="After applying, wait until istiod has observed every written object "
            "(status.observedGeneration) and show its validationMessages; exit 1 on an ERROR "
            "message or when no status comes (istiod writes status only with "
            "PILOT_ENABLE_STATUS=true).",
        ),
    ] = False,
    wait_timeout: Annotated[
        float,
        typer.Option("--wait-timeout", min=0.0, help="Seconds --wait waits in all."),
    ] = 60.0,
    profile: ValidationProfileOpt = None,
    suppress: SuppressOpt = None,
    backup_dir: BackupDirOpt = None,
    output: OutputOpt = "table",
    output_file: OutputFileOpt = None,
    print_commands: Annotated[
        bool,
        typer.Option(
            "--print-commands",
            help="Print the real kubectl/istioctl/helm/aws steps for these files (install, "
            "CRD check, injection, apply, requests, AWS, cleanup) and exit 0, touching no "
            "cluster; --profile 0.2 for Istio 0.2, else current; -o text, markdown or json.",
        ),
    ] = False,
) -> None:
    """Apply Istio routing resources to a cluster, safely.

    Validates (error findings refuse), dry-runs every object on the API
    server and shows the diff, shows the context and namespace and asks for
    confirmation (unless --yes), then re-reads every object: if one changed
    since the diff was shown, nothing is applied and the new diff is shown
    (exit 3). Then applies with server-side apply (--field-manager, default
    istiolab) in dependency order: Gateways, DestinationRules, EnvoyFilters,
    then VirtualServices. Every live object is saved in a backup set first.
    Fields owned by another field manager refuse the apply unless
    --force-conflicts, which takes over exactly the fields the plan lists.
    Objects managed by Argo CD, Flux or Helm are refused unless
    --allow-managed. Every object is read back after its write, and the
    report says what the cluster holds. If a step fails, apply stops;
    --atomic rolls back at once, interactively you are asked. Exit 0 only
    when every change was applied (read back).

    Examples:

        istiolab apply -f rules/ -n shop --dry-run=server

        istiolab apply -f canary.yaml --context prod-eks -n shop

        istiolab apply -f canary.yaml --yes --atomic --force-conflicts -o json

        istiolab apply examples/seed/ --print-commands --profile 0.2 -o markdown
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.apply import apply, rollback
    from istiolab.kube.errors import BackupError
    from istiolab.kube.plan import plan, recheck

    if print_commands:
        from istiolab.cli.realcommands import print_commands as print_steps

        check_writable(output_file, "--output-file")
        print_steps(
            _inputs(paths, filename, kustomize),
            profile=profile,
            output=output,
            output_file=output_file,
            namespace=namespace,
        )
    _check_output(output, output_file)
    mode = _dry_run_mode(dry_run)
    manager = _field_manager(field_manager)
    take = _force(force_conflicts, force)
    config = _inputs(paths, filename, kustomize)
    _check_namespace(config, namespace)
    cause = change_cause or _default_cause([*(paths or []), *(filename or [])], kustomize)
    with _errors():
        cluster = _connect(kubeconfig, context, namespace, manager)
        _human(
            f"context:   {cluster.context}\nnamespace: {namespace or cluster.namespace}\n", output
        )
        p = plan(config, cluster, profile=profile, force=take, suppress=split_codes(suppress))
    _show_warnings(p.findings)
    _human(p.format(diffs=True), output)

    def finish(code: int, outcome: str, report: ApplyReport | None = None) -> None:
        _emit(_apply_doc(p, report, outcome), output, output_file)
        raise typer.Exit(code)

    if not p.ok:
        if p.conflicts and not take:
            say(
                f"refusing to apply: {len(p.conflicts)} field(s) are managed by another field "
                "manager (see above); take them over with --force-conflicts, or leave them out"
            )
        else:
            say(f"refusing to apply: {len(p.rejected)} object(s) were rejected (see above)")
        finish(EXIT_FAILED, "refused")
    if p.managed and not allow_managed:
        for s in p.managed:
            say(f"{s.ref} is {s.managed.format() if s.managed else ''}")
        say(
            f"refusing to apply: {len(p.managed)} object(s) are managed by a GitOps controller "
            "or Helm; change them there, or pass --allow-managed (break-glass)"
        )
        finish(EXIT_FAILED, "refused")
    if mode == "server":
        _human("dry run: nothing applied (the API server accepted every object)\n", output)
        finish(EXIT_OK, "dry-run")
    if not p.changes:
        _human("nothing to apply: the cluster already matches\n", output)
        finish(EXIT_OK, "unchanged")
    store = _store(backup_dir)
    try:
        store.check_writable(cluster.context)
    except BackupError as err:
        say(f"{err}; nothing was applied (pass a writable --backup-dir)")
        raise typer.Exit(EXIT_USAGE) from None
    if not yes:
        where = ", ".join(p.namespaces)
        question = (
            f'apply {len(p.changes)} change(s) to context "{cluster.context}", '
            f"namespace(s) {where}?"
        )
        if not _confirm(question, err=output != "table"):
            say("aborted: nothing applied")
            finish(EXIT_FAILED, "aborted")
        # the approval was for the diff above: an edit made while the question was open
        # must not be overwritten by it
        with _errors():
            moved = recheck(p, cluster)
        if moved:
            for ref, what in moved:
                say(f"{ref}: {what}")
            with _errors():
                fresh = plan(
                    config, cluster, profile=profile, force=take, suppress=split_codes(suppress)
                )
            _human("the cluster changed since the diff above; the new diff:\n", output)
            _human(fresh.format(diffs=True), output)
            say(
                f"nothing applied: {len(moved)} object(s) changed on the cluster after the plan "
                "was shown; review the new diff and run apply again"
            )
            finish(EXIT_STALE, "stale")
    with _errors():
        report = apply(
            p,
            cluster,
            backups=store,
            rollback_on_failure=atomic,
            allow_managed=allow_managed,
            change_cause=cause,
        )
    _human(report.format() + "\n", output)
    if keep is not None:
        for gone in store.prune(cluster.context, keep):
            _human(f"removed backup {gone} (--keep {keep})\n", output)
    if report.ok:
        if wait and not _waited_ok(cluster, report, wait_timeout, output):
            finish(EXIT_FAILED, "not-accepted", report)
        finish(EXIT_OK, "applied", report)
    if report.rollback is None and report.backup_id is not None and not yes:
        changed = [r for r in report.results if r.outcome not in ("not-applied", "not-attempted")]
        changed = [r for r in changed if r.status != "unchanged"]
        if changed and _confirm(
            f"roll back the {len(changed)} applied change(s) now?", err=output != "table"
        ):
            with _errors():
                undo = rollback(report.backup_id, cluster, backups=store)
            _human(undo.format() + "\n", output)
    finish(EXIT_FAILED, "rolled-back" if report.rollback is not None else "failed", report)


def _waited_ok(cluster: Any, report: ApplyReport, timeout_s: float, output: str) -> bool:
    """``--wait``: istiod's status of every written object, and whether it is all good."""
    from istiolab.kube.status import wait_for_status

    written = [r.step for r in report.results if r.status == "applied"]
    refs = [(s.kind, s.namespace, s.name) for s in written]
    if not refs:
        return True
    _human(f"waiting up to {timeout_s:g} s for istiod's status of {len(refs)} object(s)\n", output)
    statuses, current = wait_for_status(cluster, refs, timeout_s=timeout_s)
    good = current
    for st in statuses:
        if not st.found:
            _human(f"  gone      {st.ref}\n", output)
            good = False
            continue
        state = "observed" if st.current else "no status"
        _human(f"  {state:<9} {st.ref}  generation {st.generation}\n", output)
        for level, code, name in st.messages:
            _human(f"      {level:<7} {code} {name}\n", output)
        for ctype, cstatus, reason in st.conditions:
            _human(f"      {ctype}={cstatus} {reason}\n", output)
        good = good and not st.errors
    if not current:
        say(
            f"--wait: istiod wrote no status for the applied generation within {timeout_s:g} s "
            "(it writes status only with PILOT_ENABLE_STATUS=true, and validationMessages only "
            "with values.global.istiod.enableAnalysis=true); the objects are applied, not "
            "confirmed"
        )
    elif not good:
        say("--wait: istiod reported errors on the applied objects (above)")
    return good


def _confirm(question: str, *, err: bool = False) -> bool:
    try:
        return bool(typer.confirm(question, default=False, err=err))
    except typer.Abort:  # no terminal (stdin closed): the answer is no
        typer.echo("", err=True)
        return False


def _set_doc(b: BackupSet) -> dict[str, Any]:
    ident = b.identity
    return {
        "id": b.id,
        "created": b.created,
        "status": b.status,
        "context": b.context,
        "namespace": b.namespace,
        "cluster": None if ident is None else ident.to_dict(),
        "changeCause": b.change_cause,
        "path": str(b.path),
        "entries": [
            {
                "ref": e.ref,
                "apiVersion": e.api_version,
                "action": e.action,
                "state": e.state,
                "rollback": e.rollback,
            }
            for e in b.entries
        ],
    }


def _rollback_doc(
    backup: BackupSet,
    preview: list[RollbackPreview],
    report: RollbackReport | None,
    outcome: str,
) -> dict[str, Any]:
    done = {r.ref: r for r in report.results} if report is not None else {}
    versions = {e.ref: e.api_version for e in backup.entries}
    items = []
    for pv in preview:
        kind, ns, name = [*pv.ref.split("/", 2), "", ""][:3]
        r = done.get(pv.ref)
        items.append(
            {
                "ref": pv.ref,
                "kind": kind,
                "namespace": ns,
                "name": name,
                "apiVersion": versions.get(pv.ref),
                "action": pv.action,
                "diff": pv.diff,
                "backupId": backup.id,
                "outcome": None if r is None else r.action,
                "detail": (r.detail if r is not None else pv.detail) or None,
            }
        )
    return {
        "apiVersion": SCHEMA,
        "kind": "Rollback",
        "backupId": backup.id,
        "context": backup.context,
        "cluster": None if backup.identity is None else backup.identity.to_dict(),
        "outcome": outcome,
        "ok": report is not None and report.ok,
        "items": items,
    }


def rollback_cmd(
    backup_id: Annotated[
        str | None,
        typer.Argument(help="Backup id (see --list). Default: the newest backup."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the backups of the context and exit.")
    ] = False,
    diff: Annotated[
        bool,
        typer.Option(
            "--diff", help="Show what the rollback would change, object by object; change nothing."
        ),
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="With --list: only backups that touched it."),
    ] = None,
    yes: YesOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also overwrite objects changed by someone else since the apply, and roll "
            "back although a newer apply changed the same objects.",
        ),
    ] = False,
    allow_other_cluster: Annotated[
        bool,
        typer.Option(
            "--allow-other-cluster",
            help="Roll back into a cluster that is not the one the backup was made on (its "
            "kube-system uid or server differs). Dangerous.",
        ),
    ] = False,
    backup_dir: BackupDirOpt = None,
    output: OutputOpt = "table",
    output_file: OutputFileOpt = None,
) -> None:
    """Undo an `istiolab apply`: restore the saved objects exactly, delete the ones it created.

    The backup must have been made on this cluster (its kube-system uid, or
    server URL): another cluster behind the same context name is refused.
    What the rollback will do is shown first, object by object, with the
    diff (an object deleted since is re-created: its whole content is
    shown). A newer apply of the same objects refuses the rollback and is
    named: roll back newest first. Objects changed by someone else since
    the apply are left alone and reported (--force overwrites them);
    objects that existed before the apply are never deleted. Exit 0 only
    when every object holds what it held before the apply.

    Examples:

        istiolab rollback --list -n shop -o json

        istiolab rollback 20260521T101502Z-3fa9c1 --diff

        istiolab rollback 20260521T101502Z-3fa9c1 --context prod-eks
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.apply import check_identity, preview_rollback, rollback

    _check_output(output, output_file)
    store = _store(backup_dir)
    with _errors():
        cluster = _connect(kubeconfig, context, None)
        if list_:
            sets, problems = store.scan(cluster.context)
            if namespace is not None:
                sets = [b for b in sets if any(e.namespace == namespace for e in b.entries)]
            for problem in problems:
                say(f"unusable backup manifest {problem.format()}")
            if output != "table":
                _emit(
                    {
                        "apiVersion": SCHEMA,
                        "kind": "BackupList",
                        "context": cluster.context,
                        "folder": str(store.folder(cluster.context)),
                        "items": [_set_doc(b) for b in sets],
                    },
                    output,
                    output_file,
                )
                raise typer.Exit(EXIT_OK)
            if not sets:
                typer.echo(
                    f'no backups for context "{cluster.context}" in {store.folder(cluster.context)}'
                )
                raise typer.Exit(EXIT_OK)
            here = cluster.identity()
            typer.echo(f"{'id':<24} {'created':<21} {'status':<20} objects")
            for b in sets:
                applied = sum(1 for e in b.entries if e.state == "applied")
                other = (
                    "  [ANOTHER CLUSTER]"
                    if b.identity is not None and not b.identity.same_as(here)
                    else ""
                )
                typer.echo(
                    f"{b.id:<24} {b.created:<21} {b.status:<20} {applied} applied "
                    f"({', '.join(f'{e.ref} {e.state}' for e in b.entries) or '-'}){other}"
                )
            raise typer.Exit(EXIT_OK)
        backup = store.open(cluster.context, backup_id)
        warning = check_identity(backup, cluster, allow_other_cluster=allow_other_cluster)
        preview = preview_rollback(backup, cluster)
    if warning:
        say(f"warning: {warning}")
    lines = [
        f"context: {cluster.context}",
        f"backup:  {backup.id} ({backup.created}, {backup.status})",
    ]
    for pv in preview:
        lines.append(f"  {pv.action:<9} {pv.ref}" + (f": {pv.detail}" if pv.detail else ""))
    text = "\n".join(lines) + "\n"
    # every object to re-create or overwrite is shown before anything is written
    shown = [pv for pv in preview if pv.diff and (diff or pv.action in ("recreate", "restore"))]
    if shown:
        text += "\n" + "".join(pv.diff for pv in shown)
    _human(text, output)
    if diff:
        _emit(_rollback_doc(backup, preview, None, "preview"), output, output_file)
        raise typer.Exit(EXIT_OK)
    if not yes and not _confirm(
        f'roll back {backup.id} on context "{cluster.context}"?', err=output != "table"
    ):
        say("aborted: nothing changed")
        _emit(_rollback_doc(backup, preview, None, "aborted"), output, output_file)
        raise typer.Exit(EXIT_FAILED)
    with _errors():
        report = rollback(
            backup.id,
            cluster,
            backups=store,
            force=force,
            allow_other_cluster=allow_other_cluster,
        )
    _human(report.format() + "\n", output)
    _emit(
        _rollback_doc(backup, preview, report, "rolled-back" if report.ok else "incomplete"),
        output,
        output_file,
    )
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


_DRY_RUN_VALUES = ("none", "server", "client")


def _bare_dry_run(args: list[str]) -> list[str]:
    """``--dry-run`` without a value means ``--dry-run=server`` (istiolab's old flag)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        nxt = args[i + 1] if i + 1 < len(args) else None
        out.append("--dry-run=server" if arg == "--dry-run" and nxt not in _DRY_RUN_VALUES else arg)
    return out


class _ApplyCommand(TyperCommand):
    """``apply``: reads a bare ``--dry-run`` as ``--dry-run=server`` before Click parses."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # a typer/click Context
        return super().parse_args(ctx, _bare_dry_run(args))


def register(app: typer.Typer) -> None:
    """Add ``cluster import``, ``diff``, ``apply`` and ``rollback`` to *app* (idempotent)."""
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if "apply" in names:
        return
    cluster_app = typer.Typer(
        name="cluster",
        help="Read a Kubernetes cluster (import its topology and rules as a scenario).",
        no_args_is_help=True,
    )
    cluster_app.command("import")(cluster_import)
    app.add_typer(cluster_app, name="cluster")
    app.command("diff")(diff_cmd)
    app.command("apply", cls=_ApplyCommand)(apply_cmd)
    app.command("rollback")(rollback_cmd)
