"""The ``istiolab`` command line: the Typer app, its root options, every command group, main.

Every command reads files, directories or ``-`` (stdin). Exit codes: 0 success, 1 the input has
errors (or a check disagreed), 2 usage errors, inputs that cannot be read or outputs that cannot
be written, 70 an internal error, 130/143 interrupted by Ctrl-C/SIGTERM after cleaning up (see
:mod:`istiolab.cli.common` and ``docs/exit-codes.md``).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import typer

from istiolab import __version__
from istiolab.cli import (
    calibrate,
    cluster,
    compare,
    config,
    conform,
    devcluster,
    simulate,
    sweep,
    verify,
)
from istiolab.cli.common import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    say,
)
from istiolab.errors import IstiolabError
from istiolab.processes import Terminated, exit_on_signals

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
compare.register(app)  # compare: variants of a scenario side by side
calibrate.register(app)  # calibrate: scenario overrides from Prometheus data
cluster.register(app)  # diff, apply, rollback, cluster import
conform.register(app)  # conform: a scenario on a real Envoy against the simulator
devcluster.register(app)  # dev-cluster: a local kube-apiserver for trying the cluster commands


DEBUG_ENV = "ISTIOLAB_DEBUG"
"""Set to ``1`` to get the traceback of an internal error instead of the one-line message."""
_MESSAGE_MAX = 400  # characters of an exception's message in the one-line internal error


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``istiolab`` console script; returns the exit code.

    SIGTERM and SIGINT (Ctrl-C) unwind the running command, so its pools, clusters, sandboxes
    and temp dirs are cleaned up, and exit ``128 + signal`` (143, 130). An exception no command
    turned into a message is a bug: it prints one line and exits 70, or, with
    ``ISTIOLAB_DEBUG=1``, propagates with its traceback. ``docs/exit-codes.md`` lists every
    code.
    """
    with exit_on_signals():
        try:
            app(args=argv, prog_name="istiolab", standalone_mode=True)
        except Terminated as ex:
            name = signal.Signals(ex.signum).name
            say("interrupted" if ex.signum == signal.SIGINT else f"terminated by {name}")
            return 128 + ex.signum
        except SystemExit as ex:
            code = ex.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
        except IstiolabError as err:
            say(str(err))
            return EXIT_USAGE
        except KeyboardInterrupt:  # SIGINT arriving outside the handler (another thread's)
            say("interrupted")
            return EXIT_INTERRUPTED
        except Exception as err:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            if isinstance(err, OSError) and err.filename is not None:
                # A file operation no command anticipated: still the user's file, so name it.
                say(f"{err.filename}: {err.strerror or _one_line(err)}")
                return EXIT_USAGE
            say(
                f"internal error: {type(err).__name__}: {_one_line(err)}; "
                f"set {DEBUG_ENV}=1 for the traceback"
            )
            return EXIT_INTERNAL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
