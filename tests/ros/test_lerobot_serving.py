"""A LeRobot policy served by the policy node over DDS: `vla up` with a LeRobot ACT directory
drives the robot stand-in through the executor (slow: the child loads LeRobot and torch)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from trajectory_msgs.msg import JointTrajectory

from vla_msgs.msg import PolicyStatus

from tests.core.test_lerobot_backend import _lerobot_python_or_skip
from .test_runtime_nodes import SO101, Recorder, counters, shipped_so101, standin, vla_up, wait_for_status

__all__ = ["shipped_so101"]  # the fixture, imported so pytest finds it here
TINY_ACT = Path(__file__).resolve().parents[2] / "scripts" / "make_tiny_lerobot_act.py"


@pytest.mark.slow
def test_vla_up_serves_a_lerobot_act_policy_to_the_executor(ros_node, ros_process, shipped_so101, tmp_path) -> None:
    python = _lerobot_python_or_skip()
    profile, _ = shipped_so101
    act = tmp_path / "act"
    subprocess.run([python, str(TINY_ACT), str(act)], check=True, timeout=300)
    commands = Recorder(ros_node, JointTrajectory, SO101.command_topic)
    executor = Recorder(ros_node, PolicyStatus, "vla_executor/status")
    policy = Recorder(ros_node, PolicyStatus, "vla_policy/status")
    standin(ros_process)
    # a stand-in starved of CPU for a moment must not read as lost joint states (as test_runtime_nodes)
    nodes = vla_up(ros_process, profile, act, "--executor-param", "mode:=async", "--executor-param",
                   "joint_state_timeout:=1.0", "--executor-param", "status_rate_hz:=10.0",
                   "--policy-param", "status_rate_hz:=10.0")
    wait_for_status(ros_node, executor, lambda s: s.chunks >= 3 and counters(s).get("commands", 0) >= 30, 180.0,
                    "30 commands from 3 chunks of the LeRobot ACT")
    assert commands.messages, "\n".join(nodes.lines[-20:])
    status = wait_for_status(ros_node, policy, lambda s: s.chunks >= 3, 10.0, "the policy's status")
    assert "lerobot:act takes no committed prefix" in status.detail, status.detail
    assert not any(key.startswith("backend_") for key in counters(status)), counters(status)
    assert nodes.alive
