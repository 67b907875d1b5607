"""The `vla` command line: one entry point, a subcommand per job.

Each subcommand lives in its own module and registers itself through `add_parser(subparsers)`;
heavy imports (torch, mujoco) happen inside the subcommand, so `vla --help` stays instant. A
command line that names its subcommand imports that module alone: another module's imports
(`init-checkpoint` pulls in torch) would otherwise be paid by every `vla convert` at start-up.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vla_core import __version__

# subcommand name -> the module that registers it, in the order `vla --help` lists them
COMMANDS: dict[str, str] = {
    "doctor": "vla_core.doctor", "init-checkpoint": "vla_core.bringup_checkpoint", "up": "vla_core.up",
    "record": "vla_core.record", "eval": "vla_core.evaluation.command", "train": "vla_core.training.command",
    "convert": "vla_core.convert", "collect": "vla_core.collect",
}
SUBCOMMANDS: tuple[str, ...] = tuple(COMMANDS.values())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with `command`'s alone (when it is one of COMMANDS)."""
    parser = argparse.ArgumentParser(
        prog="vla",
        description="Vision-language-action policies for ROS 2 robots: check, convert, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"vla_core {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in [COMMANDS[command]] if command in COMMANDS else SUBCOMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
