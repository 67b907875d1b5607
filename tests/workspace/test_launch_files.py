"""Launch files name only executables and parameter files that exist; `vla up` starts the same ones.

`ros2 launch` (launch, launch_ros) is not installable here, so the launch files are read as
Python source: every Node(package=..., executable=...) must be an installed console script of
that package and every parameter file they reference must be installed in vla_bringup. Where
launch_ros is importable (a ROS install), the launch description is also generated for real.
"""
from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import pytest
import yaml

from vla_bringup.record import NODE_NAME, recorder_command
from vla_bringup.up import NODES, node_commands

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
INSTALL = ROOT / "install"


def node_calls(path: Path) -> list[dict[str, str]]:
    """The constant keyword arguments of every Node(...) call in a launch file."""
    calls = []
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            calls.append({kw.arg: kw.value.value for kw in call.keywords if isinstance(kw.value, ast.Constant)})
    return calls


def test_there_are_policy_and_record_launch_files() -> None:
    assert {ROOT / "launch" / "policy.launch.py", ROOT / "launch" / "record.launch.py"} <= set(LAUNCH_FILES)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_name_installed_executables(path: Path) -> None:
    calls = node_calls(path)
    assert calls, f"{path.name} starts no Node"
    for call in calls:
        executable = INSTALL / call["package"] / "lib" / call["package"] / call["executable"]
        assert executable.is_file() and os.access(executable, os.X_OK), f"{path.name}: {executable} is not installed"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_reference_installed_parameter_files(path: Path) -> None:
    source = path.read_text()
    referenced = [node.value for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".yaml")]
    assert referenced, f"{path.name} references no parameter file"
    for name in referenced:
        assert (ROOT / "config" / name).is_file()
        assert (INSTALL / "vla_bringup" / "share" / "vla_bringup" / "config" / name).exists()
    assert (INSTALL / "vla_bringup" / "share" / "vla_bringup" / "launch" / path.name).exists()


def sections(file: str) -> dict[str, dict]:
    """Node name -> section of a parameter file whose keys are all `/**/<node name>` (any namespace)."""
    data = yaml.safe_load((ROOT / "config" / file).read_text())
    assert all(key.startswith("/**/") for key in data), f"config/{file}: keys {list(data)} match only the root namespace"
    return {key.removeprefix("/**/"): section for key, section in data.items()}


def test_parameter_file_sections_are_the_launched_node_names_in_any_namespace() -> None:
    launched = {call["name"] for call in node_calls(ROOT / "launch" / "policy.launch.py")}
    assert set(sections("policy.yaml")) == launched == {name for _, name in NODES}
    assert set(sections("record.yaml")) == {call["name"] for call in node_calls(ROOT / "launch" / "record.launch.py")} \
        == {NODE_NAME}


def test_vla_up_starts_what_the_launch_file_starts(tmp_path: Path) -> None:
    commands = node_commands(ROOT / "config" / "policy.yaml", "/ckpt", "so101", "servo", "robot1", True)
    launched = {(call["executable"], call["name"]) for call in node_calls(ROOT / "launch" / "policy.launch.py")}
    assert {(Path(c[0]).name, c[c.index("-r") + 1].removeprefix("__node:=")) for c in commands} == launched
    for command in commands:
        assert Path(command[0]).is_file(), f"{command[0]} is not an installed executable"
        assert command[command.index("--params-file") + 1] == str(ROOT / "config" / "policy.yaml")
        assert "__ns:=/robot1" in command and "use_sim_time:=true" in command
    assert 'checkpoint:="/ckpt"' in commands[0] and 'command_interface:="servo"' in commands[1]
    with pytest.raises(FileNotFoundError, match="parameter file .*missing.yaml does not exist"):
        node_commands(tmp_path / "missing.yaml", "", "so101", "servo", "", False)


def test_vla_record_starts_what_the_record_launch_file_starts(tmp_path: Path) -> None:
    command = recorder_command(ROOT / "config" / "record.yaml", "aloha", "/data/episodes", "robot1", True,
                               ["min_free_disk_mb:=10.0"])
    [launched] = node_calls(ROOT / "launch" / "record.launch.py")
    assert (Path(command[0]).name, command[command.index("-r") + 1]) == (launched["executable"],
                                                                          f"__node:={launched['name']}")
    assert Path(command[0]).is_file(), f"{command[0]} is not an installed executable"
    assert command[command.index("--params-file") + 1] == str(ROOT / "config" / "record.yaml")
    for expected in ('embodiment:="aloha"', 'output_dir:="/data/episodes"', "use_sim_time:=true", "__ns:=/robot1",
                     "min_free_disk_mb:=10.0"):
        assert expected in command
    with pytest.raises(FileNotFoundError, match="parameter file .*missing.yaml does not exist"):
        recorder_command(tmp_path / "missing.yaml", "so101", "/tmp", "", False)


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None,
                    reason="launch_ros is not installable without a ROS 2 distribution (see README)")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_generates(path: Path) -> None:  # pragma: no cover - runs on ROS installs
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) >= 2


def test_parameter_file_sets_only_parameters_the_nodes_declare() -> None:
    from vla_policy_node import executor_node, policy_node, recorder_node

    declared = {"vla_policy": {p.name for p in policy_node.PARAMETERS},
                "vla_executor": {p.name for p in executor_node.PARAMETERS},
                "vla_recorder": {p.name for p in recorder_node.PARAMETERS}}
    for file in ("policy.yaml", "record.yaml"):
        for node_name, section in sections(file).items():
            unknown = set(section["ros__parameters"]) - declared[node_name] - {"use_sim_time"}
            assert not unknown, f"config/{file} sets {sorted(unknown)} that {node_name} does not declare"
