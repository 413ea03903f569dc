"""The `chggen` command: the parser and the error handling (`app.py`), one module per command."""

from chggen_plugins.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
