"""The `chggen` command: the parser and one handler per command (`commands.py`), dataset building (`dataset.py`)."""

from chggen_plugins.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
