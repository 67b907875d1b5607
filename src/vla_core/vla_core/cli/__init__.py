"""The `vla` command line: one entry point, one module per subcommand.

Every subcommand module registers itself through `add_parser(subparsers)` and parses its flags
into the typed arguments of a library function; the library modules parse no arguments. The
ROS-free subcommands live here, in vla_core.cli. `vla up` and `vla record` start ROS executables,
so their modules live with the ROS side, in the vla_bringup package: where it is not installed
(a plain `pip install ./src/vla_core`), `vla` still lists them and says which package they need.

Heavy imports (torch, mujoco) happen inside the subcommand, so `vla --help` stays instant. A
command line that names its subcommand imports that module alone: another module's imports
(`init-checkpoint` pulls in torch) would otherwise be paid by every `vla convert` at start-up.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from vla_core import __version__

# subcommand name -> the module that registers it, in the order `vla --help` lists them
COMMANDS: dict[str, str] = {
    "doctor": "vla_core.cli.doctor", "init-checkpoint": "vla_core.cli.init_checkpoint", "up": "vla_bringup.up",
    "record": "vla_bringup.record", "eval": "vla_core.cli.eval", "train": "vla_core.cli.train",
    "convert": "vla_core.cli.convert", "collect": "vla_core.cli.collect",
}
SUBCOMMANDS: tuple[str, ...] = tuple(COMMANDS.values())


class MissingPackage(Exception):
    """A subcommand whose module lives in a package that is not installed (vla_bringup without ROS)."""

    def __init__(self, command: str, package: str) -> None:
        super().__init__(f"vla {command} is provided by the ROS package {package}, which is not installed in this "
                         f"environment: build the workspace (`make setup`, then `source env.sh`), or on a ROS 2 "
                         f"install `colcon build --packages-up-to {package}` and source its install/setup.bash")
        self.package = package


def command_module(command: str) -> ModuleType:
    """The module of `command`; MissingPackage when the package that provides it is not installed."""
    module_name = COMMANDS[command]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if not error.name or not f"{module_name}.".startswith(f"{error.name}."):
            raise  # the module is there and something it imports is not: that error names it
        raise MissingPackage(command, module_name.split(".")[0]) from None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with `command`'s alone (when it is one of COMMANDS)."""
    parser = argparse.ArgumentParser(
        prog="vla",
        description="Vision-language-action policies for ROS 2 robots: check, convert, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"vla_core {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [command] if command in COMMANDS else COMMANDS:
        try:
            command_module(name).add_parser(subparsers)
        except MissingPackage as missing:  # listed all the same, so `vla --help` shows every command
            subparsers.add_parser(name, help=f"(needs the ROS package {missing.package}, not installed here)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    if command in COMMANDS:
        try:
            command_module(command)
        except MissingPackage as missing:
            print(f"vla: {missing}", file=sys.stderr)
            return 2
    args = build_parser(command).parse_args(argv)
    status = int(args.run(args) or 0)
    if argv is None and getattr(args, "exit_without_teardown", False):
        # the `vla` process itself (not a caller of main), and a subcommand whose results are all
        # written and closed when it returns: Python's teardown of the modules it loaded (pyarrow,
        # PyAV, Pinocchio for `vla convert`) would add about 0.1 s to what the user waits for
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status
