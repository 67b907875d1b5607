"""The policy node's lifecycle, as ros2/demos' lifecycle talker does it: its chunk publisher is a
lifecycle publisher that the base class activates and deactivates, and the node can be cleaned
up and configured again."""
from __future__ import annotations

import pytest
import rclpy
from lifecycle_msgs.msg import State
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from vla_policy_node.policy_node import PolicyNode

from .test_runtime_nodes import fast_so101  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_the_chunk_publisher_follows_the_lifecycle_and_the_node_configures_again(fast_so101) -> None:  # noqa: F811
    profile, checkpoint = fast_so101
    context = rclpy.Context()
    rclpy.init(context=context)
    node = PolicyNode(context=context, parameter_overrides=[
        Parameter("checkpoint", value=str(checkpoint)), Parameter("embodiment", value=str(profile)),
        Parameter("torch_threads", value=1)])
    try:
        for _ in range(2):  # configure, activate, deactivate, clean up; and once more
            assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
            assert not node._chunk_pub.is_activated, "inactive after configure"
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert node._chunk_pub.is_activated, "the base class activates the lifecycle publisher"
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert not node._chunk_pub.is_activated
            assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
            assert node._chunk_pub is None and node.policy is None
            assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        node.destroy_node()
        context.try_shutdown()
