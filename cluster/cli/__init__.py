"""The ``mespot`` command line: the parser (one function per subcommand) and the commands."""

from cluster.cli.commands import main
from cluster.cli.parser import build_parser

__all__ = ["build_parser", "main"]
