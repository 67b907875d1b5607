"""Every row that leaves the executor passes the safety filter, not only the one of this tick.

The joint trajectory controller executes the rows sent ahead of the current target if the
executor goes silent, so a row outside the workspace box must never be among them. A scripted
policy drifts the tool out of a box drawn 5 mm around where it starts; every point of every
JointTrajectory on the command topic must lie inside the box.
"""
from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from vla_core.runtime.decoding import ChunkDecoder

from .conftest import PEERS
from .test_runtime_nodes import RELIABLE, SO101, START, Recorder, fast_so101  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.ros]
MARGIN = 0.005  # m around the tool's start position
IDENTITY = np.array([[0, 0, 0, 1, 0, 0, 0, 1, 0, 0]], dtype=float)  # the scripted policy's "stay" row, gripper open


def test_rows_sent_ahead_never_leave_the_workspace_box(ros_node, ros_process, fast_so101) -> None:  # noqa: F811
    profile, _ = fast_so101
    decoder = ChunkDecoder(SO101)
    # the robot starts where the scripted rows would hold it (gripper open), so row 0 moves the tool only
    still = decoder.joint_targets(IDENTITY, decoder.start_from_joints(np.array(START)), np.array(START)).positions[0]
    start = decoder.end_effector_positions(still).reshape(-1)
    box = [float(v) for v in (*(start - MARGIN), *(start + MARGIN))]
    commands = Recorder(ros_node, JointTrajectory, SO101.command_topic)
    ros_process(str(PEERS / "robot_standin.py"), "--joints", *SO101.joint_names, "--cameras", "--rate", "50",
                "--command-topic", SO101.command_topic, "--position", *map(str, still))
    ros_process(str(PEERS / "scripted_policy.py"), "--embodiment", str(profile))
    switch = ros_node.create_publisher(String, "scripted_policy/mode", RELIABLE)
    assert ros_node.spin_until(lambda: switch.get_subscription_count() > 0, 10.0)
    switch.publish(String(data="drift"))
    executor = ros_process("-m", "vla_policy_node.executor_node", "--ros-args", "-p", f"embodiment:={profile}",
                "-p", f"workspace:={box}", "-p", "mode:=sync", ready_line=None)
    assert ros_node.spin_until(lambda: any(len(m.points) > 1 for m in commands.messages), 30.0), \
        (f"no trajectories with rows sent ahead among {len(commands.messages)}:\n" + "\n".join(executor.lines))
    ros_node.spin_until(lambda: False, 1.0)
    for msg in commands.messages:
        for number, point in enumerate(msg.points):
            position = decoder.end_effector_positions(np.array(point.positions)).reshape(-1)
            outside = np.maximum(position - (start + MARGIN), (start - MARGIN) - position).max()
            assert outside <= 1e-6, (f"point {number} of {len(msg.points)} is {outside * 1000:.1f} mm outside the "
                                     "workspace box")
