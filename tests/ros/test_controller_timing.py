"""Commands as a ros2_control joint trajectory controller expects them, over DDS.

The controller drops a trajectory whose last point lies in the past. Stamped with the
executor's `now` and ending one tick later, every command that takes longer than a tick to
arrive, or meets a controller whose clock is a tick ahead, is lost; stamped zero it starts on
receipt. And a controller that falls behind must get the newest command, not a queue of old
ones: the command publisher keeps the last one only.
"""
from __future__ import annotations

import pytest
from rclpy.qos import HistoryPolicy
from trajectory_msgs.msg import JointTrajectory

from vla_policy_node.command_interfaces import COMMAND_QOS

from .conftest import PEERS
from .test_runtime_nodes import SO101, Recorder, fast_so101, standin  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_commands_start_on_receipt_and_only_the_newest_is_kept(ros_node, ros_process, fast_so101) -> None:  # noqa: F811
    profile, _ = fast_so101
    commands = Recorder(ros_node, JointTrajectory, SO101.command_topic)
    standin(ros_process)
    ros_process(str(PEERS / "scripted_policy.py"), "--embodiment", str(profile))
    ros_process("-m", "vla_policy_node.executor_node", "--ros-args", "-p", f"embodiment:={profile}",
                ready_line=None)
    assert ros_node.spin_until(lambda: len(commands.messages) >= 20, 30.0), "no commands"
    stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in commands.messages}
    assert stamps == {(0, 0)}, f"commands are stamped {sorted(stamps)[:3]}...: a late one would be dropped"
    # discovery does not carry a publisher's history depth, so the profile is checked where it is made
    assert COMMAND_QOS.history == HistoryPolicy.KEEP_LAST and COMMAND_QOS.depth == 1
