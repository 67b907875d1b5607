"""`vla up`: start the policy node and the chunk executor as the launch file does, without `ros2 launch`.

launch/policy.launch.py is the way on a ROS 2 install. Where `ros2 launch` is missing (a
PyPI-wheel ROS, as on this project's machines) this starts the same two executables, found
the way `ros2 run` finds them, with the same parameter file and the same launch arguments, as
separate processes; it stops both when either exits or on Ctrl-C. It is deliberately not a
launch system: no substitutions, no events, two fixed nodes.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vla_core.config_files import find_config_file

PACKAGE = "vla_policy_node"
NODES = (("policy_node", "vla_policy"), ("executor_node", "vla_executor"))


def find_executable(name: str) -> list[str]:
    """`<prefix>/lib/vla_policy_node/<name>` of the first ament prefix that has it (what `ros2 run`
    runs), else the module through this Python."""
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidate = Path(prefix) / "lib" / PACKAGE / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    return [sys.executable, "-m", f"{PACKAGE}.{name}"]


def string_override(name: str, value: str) -> str:
    """`name:=value` for `-p` that stays a string: ROS reads override values as YAML, so a
    checkpoint named 2024 would become an integer and an output_dir of ~ a null."""
    return f"{name}:={json.dumps(str(value))}"


def launch_arguments(params_file: Path, embodiment: str, namespace: str, use_sim_time: bool) -> list[str]:
    """The ROS arguments every node of a launch file gets: parameter file, embodiment, clock, namespace."""
    if not params_file.is_file():
        raise FileNotFoundError(f"parameter file {params_file} does not exist")
    arguments = ["--params-file", str(params_file), "-p", string_override("embodiment", embodiment),
                 "-p", f"use_sim_time:={'true' if use_sim_time else 'false'}"]
    if namespace.strip("/"):
        arguments += ["-r", f"__ns:=/{namespace.strip('/')}"]
    return arguments


def node_commands(params_file: Path, checkpoint: str, embodiment: str, command_interface: str, namespace: str,
                  use_sim_time: bool, extra: dict[str, list[str]] | None = None) -> list[list[str]]:
    """The two command lines, with the launch file's arguments as ROS parameter overrides."""
    common = launch_arguments(params_file, embodiment, namespace, use_sim_time)
    own = {"policy_node": ["-p", string_override("checkpoint", checkpoint)],
           "executor_node": ["-p", string_override("command_interface", command_interface)]}
    commands = []
    for executable, node_name in NODES:
        overrides = [item for value in (extra or {}).get(node_name, []) for item in ("-p", value)]
        commands.append([*find_executable(executable), "--ros-args", "-r", f"__node:={node_name}", *common,
                         *own[executable], *overrides])
    return commands


def run_nodes(commands: list[list[str]]) -> int:
    """Run the processes until one exits or a signal arrives; stop the rest; return the first failure."""
    processes = [subprocess.Popen(command) for command in commands]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(process.poll() is None for process in processes):
            time.sleep(0.1)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [process.returncode for process in processes]
    return next((code for code in codes if code not in (0, -signal.SIGINT)), 0)


def run(args: argparse.Namespace) -> int:
    extra = {"vla_policy": args.policy_param, "vla_executor": args.executor_param}
    params_file = Path(args.params_file) if args.params_file else find_config_file("policy.yaml")
    commands = node_commands(params_file, args.checkpoint, args.embodiment, args.command_interface, args.namespace,
                             args.use_sim_time, extra)
    for command in commands:
        print("vla up:", " ".join(command), flush=True)
    return run_nodes(commands)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("up", help="start the policy node and the chunk executor (policy.launch.py "
                                              "without ros2 launch)")
    parser.add_argument("--params-file", "--profile", default=None,
                        help="ROS parameter YAML of both nodes (default: config/policy.yaml)")
    parser.add_argument("--checkpoint", default="", help="checkpoint directory")
    parser.add_argument("--embodiment", default="so101", help="embodiment profile name or YAML path")
    parser.add_argument("--command-interface", default="joint_trajectory",
                        choices=("joint_trajectory", "servo", "moveit"))
    parser.add_argument("--namespace", default="", help="namespace of both nodes (one per robot)")
    parser.add_argument("--use-sim-time", action="store_true", help="follow /clock")
    parser.add_argument("--policy-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra parameter of the policy node (repeatable)")
    parser.add_argument("--executor-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra parameter of the executor (repeatable)")
    parser.set_defaults(run=run)
