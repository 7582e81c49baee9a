"""The ``istiolab`` command line: one Typer app (:mod:`istiolab.cli.app`), one module per group."""

from istiolab.cli.app import main

__all__ = ["main"]
