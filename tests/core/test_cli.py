"""The `vla` command line is one package: a module per subcommand, the library parses no arguments,
and the ROS subcommands are found in vla_bringup or named as missing."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from vla_core.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
VLA_CORE = ROOT / "src" / "vla_core" / "vla_core"
ROS_COMMANDS = {"up", "record"}
# the LeRobot backend's child runs as a script in the LeRobot environment, where vla_core is not
# installed: its flags are a process interface of the backend, not a `vla` subcommand
SCRIPTS = {VLA_CORE / "backends" / "lerobot_child.py"}


def test_each_subcommand_is_a_module_of_the_cli_package_or_of_vla_bringup() -> None:
    for name, module in COMMANDS.items():
        package = "vla_bringup" if name in ROS_COMMANDS else "vla_core.cli"
        assert module == f"{package}.{name.replace('-', '_')}", (name, module)


def test_no_library_module_parses_arguments() -> None:
    parsing = []
    for path in sorted(set(VLA_CORE.rglob("*.py")) - set((VLA_CORE / "cli").rglob("*.py")) - SCRIPTS):
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        if "argparse" in imported or any(isinstance(node, ast.Name) and node.id == "add_parser"
                                         for node in ast.walk(tree)):
            parsing.append(str(path.relative_to(VLA_CORE)))
    assert not parsing, f"argument parsing outside vla_core/cli: {parsing}"


def test_without_vla_bringup_vla_names_the_package_up_and_record_need(monkeypatch, capsys) -> None:
    for module in [name for name in sys.modules if name.split(".")[0] == "vla_bringup"]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "vla_bringup", None)  # import vla_bringup now fails as if not installed
    for command in sorted(ROS_COMMANDS):
        assert main([command, "--checkpoint", "x"]) == 2
        error = capsys.readouterr().err
        assert f"vla {command} is provided by the ROS package vla_bringup, which is not installed" in error
    listing = build_parser().format_help()
    assert "(needs the ROS package vla_bringup, not installed here)" in listing
    assert "convert" in listing and "eval" in listing
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0


def test_an_import_error_inside_a_subcommand_is_not_reported_as_a_missing_package(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "vla_bringup.up", raising=False)
    monkeypatch.setitem(sys.modules, "vla_core.config_files", None)  # what vla_bringup.up imports
    with pytest.raises(ModuleNotFoundError, match="vla_core.config_files"):
        main(["up", "--help"])
