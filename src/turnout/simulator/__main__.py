"""``python -m turnout.simulator --port 8090``."""

from __future__ import annotations

import typer

from turnout.simulator.cli import simulate


def main() -> None:
    """Run the ``simulate`` command as a standalone program."""
    typer.run(simulate)


if __name__ == "__main__":
    main()
