"""The policy sees what training saw: observations at the camera's capture stamp, over DDS.

`vla convert` aligns training data by header stamp, so a training frame pairs an image with the
joints measured when it was captured. A camera whose frames arrive 150 ms after capture (the
stand-in's `--camera-delay`) must not be paired with the fresher joints: the policy node's
chunks are stamped with a front camera's capture stamp, and their start pose is the forward
kinematics of the joints measured at that stamp, while the arm moves fast enough that the joints
150 ms later are elsewhere.
"""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_core.runtime.decoding import ChunkDecoder
from vla_msgs.msg import ActionChunk, PolicyStatus
from vla_msgs.srv import GetActionChunk
from vla_policy_node.ros_time import seconds_to_duration, stamp_to_seconds

from .conftest import PEERS
from .test_runtime_nodes import RELIABLE, SO101, START, Recorder, fast_so101, wait_for_status  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.ros]
DELAY = 0.15  # s from capture to publication


def test_chunks_start_from_the_joints_measured_when_the_image_was_captured(ros_node, ros_process,
                                                                           fast_so101) -> None:  # noqa: F811
    profile, checkpoint = fast_so101
    deep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
    joints = Recorder(ros_node, JointState, SO101.joint_state_topic, deep)
    front = Recorder(ros_node, Image, "front/image_raw", deep)  # every capture stamp, none lost to a short queue
    chunks = Recorder(ros_node, ActionChunk, "vla_policy/action_chunk")
    status = Recorder(ros_node, PolicyStatus, "vla_policy/status")
    ros_process(str(PEERS / "robot_standin.py"), "--joints", *SO101.joint_names, "--cameras", "front", "wrist",
                "--image-size", "224", "--rate", "50", "--command-topic", SO101.command_topic,
                "--position", *map(str, START), "--camera-delay", str(DELAY))
    ros_process("-m", "vla_policy_node.policy_node", "--ros-args", "-p", f"checkpoint:={checkpoint}",
                "-p", f"embodiment:={profile}", "-p", "status_rate_hz:=10.0", "-p", "torch_threads:=1",
                "-p", "staleness_limit:=0.5", ready_line=None)
    wait_for_status(ros_node, status, lambda s: s.state == PolicyStatus.STATE_READY, 90.0, "ready")
    # the shoulder pans 1.5 rad in 6 s (0.25 rad/s: 0.0375 rad within one camera delay)
    command = ros_node.create_publisher(JointTrajectory, SO101.command_topic, RELIABLE)
    target = list(START)
    target[0] += 1.5
    command.publish(JointTrajectory(joint_names=list(SO101.joint_names), points=[
        JointTrajectoryPoint(positions=target, time_from_start=seconds_to_duration(6.0))]))
    ros_node.spin_until(lambda: False, 1.0)
    client = ros_node.create_client(GetActionChunk, "vla_policy/get_action_chunk")
    served, answers = 0, []
    for _ in range(20):  # a loaded machine may leave a stream stale now and then: that is refused, by name
        future = client.call_async(GetActionChunk.Request(instruction="pick up the cube"))
        assert ros_node.spin_until(future.done, 15.0), "no answer"
        answers.append(future.result().message)
        served += future.result().success
        if served == 4:
            break
        ros_node.spin_until(lambda: False, 0.2)
    assert served == 4, answers
    ros_node.spin_until(lambda: len(chunks.messages) >= 4, 5.0)
    decoder = ChunkDecoder(SO101)
    captured = np.array([stamp_to_seconds(m.header.stamp) for m in front.messages])
    joint_times = np.array([stamp_to_seconds(m.header.stamp) for m in joints.messages])
    joint_values = np.array([m.position for m in joints.messages])
    judged = 0
    for chunk in chunks.messages[-4:]:
        stamp = stamp_to_seconds(chunk.header.stamp)
        if not np.any(np.abs(captured - stamp) < 0.05):
            continue  # this test lost the frames around it (best effort on a loaded machine): nothing to compare
        judged += 1
        assert np.min(np.abs(captured - stamp)) < 1e-6, f"chunk stamped {stamp:.3f}, not a front camera capture stamp"
        then = joint_values[np.argmin(np.abs(joint_times - stamp))]
        later = joint_values[np.argmin(np.abs(joint_times - stamp - DELAY))]
        assert abs(later[0] - then[0]) > 0.02, "the arm must move within a camera delay for this test to mean anything"
        pose = chunk.chunk_start_poses[0].position
        start = np.array([pose.x, pose.y, pose.z])
        assert np.linalg.norm(start - decoder.end_effector_positions(then).reshape(-1)) < 0.004, \
            "the chunk starts from the joints measured when its image was captured"
    assert judged >= 2, "too few chunks had their camera frames received here to judge them"
