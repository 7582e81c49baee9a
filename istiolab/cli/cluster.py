"""Cluster commands of the ``istiolab`` command line.

``cluster import``, ``diff``, ``apply`` and ``rollback``; :func:`register` adds them to the
``istiolab`` Typer app, and the Kubernetes client is imported only inside the commands. Exit
codes: 0 success; 1 refused or failed (error findings, field conflicts, objects the API server
rejected, RBAC denials, an apply that stopped midway, an incomplete rollback, a declined
confirmation); 2 usage errors, unreadable input, or no cluster to talk to (kubeconfig, context,
connection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from istiolab.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PathsArg,
    SuppressOpt,
    echo_findings,
    load_config,
    output_option,
    say,
    split_codes,
    write_or_echo,
)
from istiolab.errors import ClusterError, ConfigError, IstiolabError
from istiolab.findings import Finding, has_errors

if TYPE_CHECKING:
    from istiolab.kube.adapter import ClusterAdapter
    from istiolab.kube.backups import BackupStore

__all__ = ["register"]

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
    typer.Option("--namespace", "-n", help="Namespace. Default: the context's namespace."),
]
ValidationProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", "-p", help="Istio version for validation (default: newest; 0.2 for legacy)."
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Take over fields that another field manager owns (server-side apply force).",
    ),
]
BackupDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--backup-dir",
        help="Backup root. Default: $ISTIOLAB_HOME/backups, else ~/.istiolab/backups.",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _connect(kubeconfig: Path | None, context: str | None, namespace: str | None) -> ClusterAdapter:
    """The cluster to talk to (tests replace this with an in-memory cluster)."""
    from istiolab.kube.client import connect

    return connect(kubeconfig, context, namespace)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn istiolab errors into a message and an exit code (never a traceback)."""
    from istiolab.kube.errors import ConnectError

    try:
        yield
    except ConfigError as err:
        echo_findings(err.findings)
        say(
            f"refusing: the config has {len(err.findings)} error(s); nothing was sent to the "
            "cluster"
        )
        raise typer.Exit(EXIT_FAILED) from None
    except ConnectError as err:
        say(str(err))
        raise typer.Exit(EXIT_USAGE) from None
    except ClusterError as err:
        say(str(err))
        raise typer.Exit(EXIT_FAILED) from None
    except IstiolabError as err:
        say(str(err))
        raise typer.Exit(EXIT_USAGE) from None


def _store(backup_dir: Path | None) -> BackupStore:
    from istiolab.kube.backups import BackupStore

    return BackupStore(backup_dir)


def _show_warnings(findings: tuple[Finding, ...]) -> None:
    if findings:
        echo_findings(findings)


def cluster_import(
    output: Annotated[Path | None, output_option("scenario YAML")] = None,
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

    Examples:

        istiolab cluster import -n shop -o shop.yaml --config-out rules.yaml

        istiolab cluster import --context prod-eks -n shop --gateway-namespace ingress
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.config import dumps
    from istiolab.kube.importer import inspect_cluster

    with _errors():
        cluster = _connect(kubeconfig, context, namespace)
        result = inspect_cluster(
            cluster, namespace, gateway_namespace=gateway_namespace, rate_rps=rate
        )
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    write_or_echo(
        result.scenario_yaml(),
        output,
        f"wrote {output}: {len(result.scenario.services)} service(s), "
        f"{len(result.config)} routing resource(s), "
        f"AZs {', '.join(result.scenario.ingress.azs)}",
    )
    if config_out is not None:
        config_out.write_text(dumps(result.config), encoding="utf-8")
        typer.echo(f"wrote {len(result.config)} resource(s) to {config_out}", err=True)
    # Objects read from the cluster that do not validate are findings like any input's; the
    # import still writes what it could read, and says so with its exit code.
    _show_warnings(result.config.findings)
    if has_errors(result.config.findings):
        raise typer.Exit(EXIT_FAILED)


def diff_cmd(
    paths: PathsArg,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    profile: ValidationProfileOpt = None,
    suppress: SuppressOpt = None,
    force: ForceOpt = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when there are differences.")
    ] = False,
) -> None:
    """Show what `istiolab apply` would change: a server-side dry run of every object, diffed.

    The config is validated first (error findings refuse). Each object is
    sent to the API server with dryRun=All (schema, admission webhooks and
    field-manager conflicts are checked, nothing is stored) and the result
    is diffed against the live object as unified YAML, without
    server-managed fields. Exit 0, or 1 on conflicts or rejected objects.

    Examples:

        istiolab diff rules/ -n shop

        istiolab diff canary.yaml --context prod-eks --exit-code
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.plan import plan

    config = load_config(paths)
    with _errors():
        cluster = _connect(kubeconfig, context, namespace)
        p = plan(config, cluster, profile=profile, force=force, suppress=split_codes(suppress))
    _show_warnings(p.findings)
    typer.echo(p.format(diffs=True), nl=False)
    if not p.ok:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_FAILED if exit_code and p.changes else EXIT_OK)


def apply_cmd(
    paths: PathsArg,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Stop after the server-side dry run; change nothing."),
    ] = False,
    yes: YesOpt = False,
    force: ForceOpt = False,
    profile: ValidationProfileOpt = None,
    suppress: SuppressOpt = None,
    backup_dir: BackupDirOpt = None,
) -> None:
    """Apply Istio routing resources to a cluster, safely.

    Validates (error findings refuse), dry-runs every object on the API
    server and shows the diff, shows the context and namespace and asks for
    confirmation (unless --yes), then applies with server-side apply
    (fieldManager=istiolab) in dependency order: Gateways, DestinationRules,
    EnvoyFilters, then VirtualServices. Every live object is saved in a
    backup set first. Fields owned by another field manager refuse the apply
    unless --force. If a step fails, apply stops, reports what was and was
    not applied, and offers to roll back. Services and Deployments in the
    input are context for validation, never applied. Every object is read
    back after its write, and the report says what the cluster holds. With
    --yes, a failure rolls back at once and the report says, object by
    object, what the cluster holds after the rollback. Exit 0 only when
    every change was applied (read back).

    Examples:

        istiolab apply rules/ -n shop --dry-run

        istiolab apply canary.yaml --context prod-eks -n shop

        istiolab apply canary.yaml --yes --force
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.apply import apply, rollback
    from istiolab.kube.plan import plan

    config = load_config(paths)
    with _errors():
        cluster = _connect(kubeconfig, context, namespace)
        typer.echo(f"context:   {cluster.context}")
        typer.echo(f"namespace: {namespace or cluster.namespace}")
        p = plan(config, cluster, profile=profile, force=force, suppress=split_codes(suppress))
    _show_warnings(p.findings)
    typer.echo(p.format(diffs=True), nl=False)
    if not p.ok:
        if p.conflicts and not force:
            say(
                f"refusing to apply: {len(p.conflicts)} field(s) are managed by another field "
                "manager (see above); take them over with --force, or leave them out"
            )
        else:
            say(f"refusing to apply: {len(p.rejected)} object(s) were rejected (see above)")
        raise typer.Exit(EXIT_FAILED)
    if dry_run:
        typer.echo("dry run: nothing applied (the API server accepted every object)")
        raise typer.Exit(EXIT_OK)
    if not p.changes:
        typer.echo("nothing to apply: the cluster already matches")
        raise typer.Exit(EXIT_OK)
    if not yes:
        where = ", ".join(p.namespaces)
        question = (
            f'apply {len(p.changes)} change(s) to context "{cluster.context}", '
            f"namespace(s) {where}?"
        )
        if not _confirm(question):
            say("aborted: nothing applied")
            raise typer.Exit(EXIT_FAILED)
    store = _store(backup_dir)
    with _errors():
        # Unattended (--yes), nobody is there to answer "roll back?": a failure rolls back at
        # once. Interactively the operator is asked, with the report in front of them.
        report = apply(p, cluster, backups=store, rollback_on_failure=yes)
    typer.echo(report.format())
    if report.ok:
        raise typer.Exit(EXIT_OK)
    if report.rollback is None and report.backup_id is not None and not yes:
        changed = [r for r in report.results if r.outcome not in ("not-applied", "not-attempted")]
        changed = [r for r in changed if r.status != "unchanged"]
        if changed and _confirm(f"roll back the {len(changed)} applied change(s) now?"):
            with _errors():
                undo = rollback(report.backup_id, cluster, backups=store)
            typer.echo(undo.format())
    raise typer.Exit(EXIT_FAILED)


def _confirm(question: str) -> bool:
    try:
        return bool(typer.confirm(question, default=False))
    except typer.Abort:  # no terminal (stdin closed): the answer is no
        typer.echo("", err=True)
        return False


def rollback_cmd(
    backup_id: Annotated[
        str | None,
        typer.Argument(help="Backup id (see --list). Default: the newest backup."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the backups of the context and exit.")
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    yes: YesOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also overwrite objects changed by someone else since the apply.",
        ),
    ] = False,
    backup_dir: BackupDirOpt = None,
) -> None:
    """Undo an `istiolab apply`: restore the saved objects exactly, delete the ones it created.

    Objects changed by someone else since the apply are left alone and
    reported (use the --force option to overwrite them); objects that
    existed before the apply are never deleted. Every object is read back
    after its restore or delete: exit 0 only when every object holds what
    it held before the apply; otherwise the report names the objects not
    restored (and what they hold) and the exit code is 1.

    Examples:

        istiolab rollback --list

        istiolab rollback 20260521T101502Z-3fa9c1 --context prod-eks
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.apply import rollback

    store = _store(backup_dir)
    with _errors():
        cluster = _connect(kubeconfig, context, None)
        if list_:
            sets, problems = store.scan(cluster.context)
            for problem in problems:
                say(f"unusable backup manifest {problem.format()}")
            if not sets:
                typer.echo(
                    f'no backups for context "{cluster.context}" in {store.folder(cluster.context)}'
                )
                raise typer.Exit(EXIT_OK)
            typer.echo(f"{'id':<24} {'created':<21} {'status':<20} objects")
            for b in sets:
                applied = sum(1 for e in b.entries if e.state == "applied")
                typer.echo(
                    f"{b.id:<24} {b.created:<21} {b.status:<20} {applied} applied "
                    f"({', '.join(f'{e.ref} {e.state}' for e in b.entries) or '-'})"
                )
            raise typer.Exit(EXIT_OK)
        backup = store.open(cluster.context, backup_id)
    typer.echo(f"context: {cluster.context}")
    typer.echo(f"backup:  {backup.id} ({backup.created}, {backup.status})")
    for e in reversed(backup.entries):
        if e.state in ("applied", "unknown", "pending") or e.ambiguous:
            what = "delete (created by the apply)" if e.action == "create" else "restore"
            typer.echo(f"  {what:<30} {e.ref}")
    if not yes and not _confirm(f'roll back {backup.id} on context "{cluster.context}"?'):
        say("aborted: nothing changed")
        raise typer.Exit(EXIT_FAILED)
    with _errors():
        report = rollback(backup.id, cluster, backups=store, force=force)
    typer.echo(report.format())
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


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
    app.command("apply")(apply_cmd)
    app.command("rollback")(rollback_cmd)
