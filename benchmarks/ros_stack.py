"""The cross-process stack the node benchmarks measure: robot stand-in, policy node, executor.

Each process is real (rclpy over Fast DDS, the untrained bring-up checkpoint of the default
architecture unless a checkpoint is given: a LeRobot policy directory too); the stand-in is the tests' kinematic robot (tests/ros/peers/robot_standin.py).
The stack runs in its own ROS domain with localhost-only discovery.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from vla_core.bringup_checkpoint import write_initial_checkpoint
from vla_core.embodiment import load_embodiment

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "ros" / "peers" / "robot_standin.py"
START = ["0.0", "-0.5", "0.5", "0.3", "0.0", "0.5"]


def isolate_ros_domain() -> None:
    """A domain of its own (61..90 by process id) so a benchmark never meets another ROS graph."""
    os.environ["ROS_DOMAIN_ID"] = str(61 + os.getpid() % 30)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@contextlib.contextmanager
def so101_stack(rate_hz: float, executor: bool = True, policy_params: tuple[str, ...] = (),
                executor_params: tuple[str, ...] = (), checkpoint: str | None = None,
                started: list[subprocess.Popen] | None = None) -> Iterator[Path]:
    """Start the stand-in, the policy node and (optionally) the executor for an SO-101 profile at
    `rate_hz`; yields the profile path; stops everything on exit. `checkpoint`: the policy to
    serve (default: a fresh bring-up checkpoint). `started` receives the processes (stand-in,
    policy node, executor), each the leader of its own process group, for a benchmark that
    pauses one."""
    isolate_ros_domain()
    spec = load_embodiment("so101")
    with tempfile.TemporaryDirectory(prefix="vla_bench_") as tmp:
        data = yaml.safe_load(Path(spec.source).read_text())
        data["control_rate_hz"] = rate_hz
        profile = Path(tmp) / "so101.yaml"
        profile.write_text(yaml.safe_dump(data))
        checkpoint = checkpoint or write_initial_checkpoint([str(profile)], Path(tmp) / "checkpoint")
        commands = [[sys.executable, str(STANDIN), "--joints", *spec.joint_names, "--cameras", "front", "wrist",
                     "--image-size", "224", "--rate", "50", "--command-topic", spec.command_topic, "--position", *START]]
        policy = [sys.executable, "-m", "vla_policy_node.policy_node", "--ros-args", "-p", f"checkpoint:={checkpoint}",
                  "-p", f"embodiment:={profile}", "-p", "instruction:=pick up the cube"]
        commands.append(policy + _as_params(policy_params))
        if executor:
            commands.append([sys.executable, "-m", "vla_policy_node.executor_node", "--ros-args",
                             "-p", f"embodiment:={profile}", *_as_params(executor_params)])
        processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True) for c in commands]
        if started is not None:
            started.extend(processes)
        try:
            yield profile
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


def _as_params(values: tuple[str, ...]) -> list[str]:
    return [item for value in values for item in ("-p", value)]
