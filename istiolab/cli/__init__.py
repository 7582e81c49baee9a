"""The ``istiolab`` command line: one Typer app, one module per command group."""

from istiolab.cli.app import app, main

__all__ = ["app", "main"]
