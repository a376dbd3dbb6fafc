"""A click group whose subcommands are imported only when run, so every command starts fast.

``import turnout.cli`` used to pull in the whole application (SQLAlchemy, the routing tables, the
simulator): ``turnout token`` took seconds before it did anything. Here a subcommand is a
``module:attribute`` path and a line of help; ``turnout --help`` lists them without importing them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A subcommand: where it lives (``module:attribute``, a Typer app or a command function)."""

    path: str
    help: str


class LazyGroup(TyperGroup):
    """Lists lazy subcommands beside the eager ones; imports one only when it is run. (Click's types
    are typed loosely here: Typer vendors its own copy of Click.)"""

    lazy: dict[str, LazyCommand] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = entry.path.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if not isinstance(target, typer.Typer):
            single = typer.Typer()
            single.command(name=cmd_name, help=entry.help)(target)
            target = single
        command = typer.main.get_command(target)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from the registry's help lines (no import of the commands)."""
        rows = []
        for name in self.list_commands(ctx):
            entry = self.lazy.get(name)
            if entry is not None:
                rows.append((name, entry.help))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
