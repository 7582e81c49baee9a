"""``istiolab apply --print-commands``: the real kubectl, istioctl, helm and aws steps of a config.

Prints :func:`istiolab.kube.commands.real_commands` for the input files (the same function the
notebooks' "On a real cluster" blocks render) and exits 0 without reading a kubeconfig or
talking to a cluster. ``--profile 0.2`` gives the seed's 2017 steps, anything else (``current``,
a ``1.x`` version, or none) today's; ``-o text|markdown|json`` picks the format.
"""

from __future__ import annotations

from pathlib import Path

import typer

from istiolab.cli.common import EXIT_FAILED, EXIT_OK, echo_findings, say, usage_error, write_or_echo
from istiolab.config import ConfigSet
from istiolab.findings import Severity

__all__ = ["FORMATS", "print_commands"]

FORMATS = ("text", "table", "markdown", "md", "json")
"""``-o`` values ``--print-commands`` takes (``table`` is ``text``, ``md`` is ``markdown``)."""


def print_commands(
    config: ConfigSet,
    *,
    profile: str | None,
    output: str,
    output_file: Path | None,
    topic: str = "all",
    namespace: str | None = None,
) -> None:
    """Print the steps and exit 0; a bad ``--profile``, ``-o`` or topic exits 2.

    *namespace* (``-n``) is the namespace of the resources that name none, as for kubectl.
    Input that did not load cleanly (a YAML or schema error) exits 1 with its findings, as
    ``apply`` would refuse it: steps for the part that loaded would leave the rest out.

    Raises:
        typer.Exit: Always (0 after printing).
    """
    from istiolab.kube.commands import CommandsError, real_commands

    if output not in FORMATS:
        raise usage_error(
            f"-o/--output with --print-commands must be text, markdown or json, not {output!r}"
        )
    errors = [f for f in config.findings if f.severity is Severity.ERROR]
    if errors:
        echo_findings(errors)
        say(f"no commands printed: {len(errors)} error(s) in the input (see above)")
        raise typer.Exit(EXIT_FAILED)
    try:
        commands = real_commands(config, profile, topic, namespace=namespace)
        text = commands.format(output)
    except CommandsError as err:
        raise usage_error(str(err)) from None
    write_or_echo(text, output_file, f"wrote {output_file}", "--output-file")
    raise typer.Exit(EXIT_OK)
