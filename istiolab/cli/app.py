"""The ``istiolab`` command line: the Typer app, its root options, every command group, main.

Every command reads files, directories or ``-`` (stdin). Exit codes: 0 success, 1 the input has
errors (or a check disagreed), 2 usage errors or inputs that cannot be read (see
:mod:`istiolab.cli.common`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from istiolab import __version__
from istiolab.cli import cluster, config, simulate, sweep, verify
from istiolab.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, say
from istiolab.errors import IstiolabError

__all__ = ["app", "main"]

app = typer.Typer(
    name="istiolab",
    help=(
        "Design, simulate, verify and apply Istio ingress routing (RouteRule, Ingress, "
        "VirtualService/DestinationRule/Gateway) on Kubernetes on AWS."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"istiolab {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Istio ingress lab: lint, convert, explain, verify on Envoy, simulate, apply."""


# In the order --help lists them.
config.register(app)  # lint, convert, explain, envoy-config
verify.register(app)  # verify
simulate.register(app)  # simulate
sweep.register(app)  # sweep, plan
cluster.register(app)  # diff, apply, rollback, cluster import


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``istiolab`` console script; returns the exit code."""
    try:
        app(args=argv, prog_name="istiolab", standalone_mode=True)
    except SystemExit as ex:
        code = ex.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    except IstiolabError as err:
        say(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
