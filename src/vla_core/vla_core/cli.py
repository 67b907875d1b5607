"""The `vla` command line: one entry point, a subcommand per job.

Each subcommand lives in its own module and registers itself through `add_parser(subparsers)`;
heavy imports (torch, mujoco) happen inside the subcommand, so `vla --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vla_core import __version__

# module path of every subcommand, in the order `vla --help` lists them
SUBCOMMANDS: tuple[str, ...] = ("vla_core.doctor", "vla_core.bringup_checkpoint", "vla_core.up", "vla_core.record",
                               "vla_core.evaluation.command", "vla_core.training.command", "vla_core.convert",
                               "vla_core.collect")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vla",
        description="Vision-language-action policies for ROS 2 robots: check, convert, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"vla_core {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
