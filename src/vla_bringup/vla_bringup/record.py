"""`vla record`: start the recorder node as launch/record.launch.py does, without `ros2 launch`.

The same executable (`recorder_node`, found as `ros2 run` finds it), the same parameter file
(config/record.yaml) and the same launch arguments as `vla up` passes them (vla_bringup.up), in
its own process; Ctrl-C stops it, which closes an open episode as unsuccessful.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vla_bringup.up import find_executable, launch_arguments, run_nodes, string_override
from vla_core.config_files import find_config_file

EXECUTABLE, NODE_NAME = "recorder_node", "vla_recorder"


def recorder_command(params_file: Path, embodiment: str, output_dir: str, namespace: str, use_sim_time: bool,
                     extra: list[str] | None = None) -> list[str]:
    """The recorder's command line, with the launch file's arguments as ROS parameter overrides."""
    overrides = [item for value in extra or [] for item in ("-p", value)]
    return [*find_executable(EXECUTABLE), "--ros-args", "-r", f"__node:={NODE_NAME}",
            *launch_arguments(params_file, embodiment, namespace, use_sim_time),
            "-p", string_override("output_dir", output_dir), *overrides]


def run(args: argparse.Namespace) -> int:
    params_file = Path(args.params_file) if args.params_file else find_config_file("record.yaml")
    command = recorder_command(params_file, args.embodiment, args.output_dir, args.namespace, args.use_sim_time,
                               args.param)
    print("vla record:", " ".join(command), flush=True)
    return run_nodes([command])


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("record", help="start the episode recorder node (record.launch.py without "
                                                  "ros2 launch); episodes via its start/stop/discard services")
    parser.add_argument("--params-file", default=None, help="ROS parameter YAML (default: config/record.yaml)")
    parser.add_argument("--embodiment", default="so101", help="embodiment profile name or YAML path")
    parser.add_argument("--output-dir", default="~/vla_episodes", help="directory of the episode bags")
    parser.add_argument("--namespace", default="", help="namespace of the recorder (the robot's)")
    parser.add_argument("--use-sim-time", action="store_true", help="stamp messages with /clock time")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="extra parameter of the recorder (repeatable)")
    parser.set_defaults(run=run)
