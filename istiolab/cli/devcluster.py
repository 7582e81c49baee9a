"""``istiolab dev-cluster``: a local Kubernetes API server to try the cluster commands on.

See :mod:`istiolab.kube.devserver` for what it is. It runs until Ctrl-C or SIGTERM, then stops
etcd and kube-apiserver and removes their data. Exit codes: 130 or 143 after Ctrl-C or SIGTERM
(everything stopped), 0 with ``--check`` (started and stopped again); 2 the peers are not built
(``make peers``), openssl is missing, or the kubeconfig cannot be written; 1 the servers did
not start, or stopped by themselves (their output's last lines are shown).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from istiolab.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, check_writable, say

__all__ = ["register"]


def dev_cluster(
    kubeconfig: Annotated[
        Path,
        typer.Option("--kubeconfig", help="Where to write the dev cluster's kubeconfig."),
    ] = Path(".istiolab-dev.kubeconfig"),
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="API server port (default: a free one)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Start, print the kubeconfig's path, and stop again."),
    ] = False,
) -> None:
    """Start a local Kubernetes API server (etcd + kube-apiserver, Istio's CRDs) on 127.0.0.1.

    Uses the etcd and kube-apiserver that `make peers` builds into peers/bin
    (or $ISTIOLAB_PEERS_BIN). Writes a kubeconfig with the context
    istiolab-dev, then runs until Ctrl-C; everything is stopped and deleted
    on exit. There are no nodes or controllers: objects are stored,
    validated against the CRDs and versioned, dry runs and field ownership
    are real, nothing runs.

    Examples:

        istiolab dev-cluster --kubeconfig /tmp/dev.kubeconfig

        istiolab diff -f examples/seed --kubeconfig /tmp/dev.kubeconfig -n default
    """  # noqa: D412 - a blank line keeps the examples apart in --help
    from istiolab.kube.devserver import DevCluster, DevClusterError, PeersNotBuiltError

    check_writable(kubeconfig, "--kubeconfig")
    try:
        cluster = DevCluster(kubeconfig, port=port, log=lambda line: say(line))
    except PeersNotBuiltError as err:
        say(str(err))
        raise typer.Exit(EXIT_USAGE) from None
    try:
        with cluster:
            typer.echo(f"API server: {cluster.url}")
            typer.echo(f"kubeconfig: {kubeconfig} (context istiolab-dev)")
            typer.echo(f"try:        istiolab diff -f FILE --kubeconfig {kubeconfig} -n default")
            if check:
                raise typer.Exit(EXIT_OK)
            typer.echo("running; Ctrl-C stops it and deletes its data")
            for _ in cluster.wait():
                pass
            say("the dev cluster stopped by itself")
            raise typer.Exit(EXIT_FAILED)
    except DevClusterError as err:
        say(str(err))
        code = EXIT_USAGE if "openssl is not installed" in str(err) else EXIT_FAILED
        raise typer.Exit(code) from None
    finally:
        kubeconfig.unlink(missing_ok=True)


def register(app: typer.Typer) -> None:
    """Add ``dev-cluster`` to *app*."""
    app.command("dev-cluster")(dev_cluster)
