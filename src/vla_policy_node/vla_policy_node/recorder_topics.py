"""Which topics the recorder records, and how it subscribes to them: as `ros2 bag record` does.

The profile names the robot's streams (cameras, joint states, the teleoperator's command topic);
`extra_topics` adds others, with their type or without (then the type is taken from the
publishers when they appear). The subscription's QoS follows the publishers' offer: reliable
and transient-local only where every publisher offers it, so it matches all of them; and the
offered profiles are stored in the bag, for playback.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from vla_core.embodiment import EmbodimentSpec

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
SUBSCRIPTION_DEPTH = 100  # messages DDS may hold for the recorder while it writes a chunk


def profile_topics(spec: EmbodimentSpec, image_transport: str) -> dict[str, str]:
    """Topic -> type of the streams an embodiment profile names (relative names, as in the profile)."""
    if image_transport not in ("raw", "compressed"):
        raise ValueError(f"image_transport {image_transport!r}: expected 'raw' or 'compressed'")
    compressed = image_transport == "compressed"
    topics = {camera.topic + ("/compressed" if compressed else ""): COMPRESSED_IMAGE if compressed else IMAGE
              for camera in spec.cameras}
    topics[spec.joint_state_topic] = JOINT_STATE
    topics[spec.command_topic] = JOINT_TRAJECTORY
    return topics


def parse_extra_topics(entries: Sequence[str]) -> dict[str, str | None]:
    """'topic' or 'topic:package/msg/Type' entries -> topic -> type (None: from the publishers)."""
    topics: dict[str, str | None] = {}
    for entry in entries:
        topic, _, msgtype = entry.strip().partition(":")
        if not topic or (msgtype and msgtype.count("/") != 2):
            raise ValueError(f"extra topic {entry!r}: expected 'topic' or 'topic:package/msg/Type'")
        topics[topic] = msgtype or None
    return topics


def message_class(msgtype: str) -> type:
    """The generated Python class of 'package/msg/Type' (what rosidl_runtime_py's get_message does)."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"message type {msgtype!r} is not importable as {package}.msg.{name}: {error}") from error


def subscription_qos(publishers: Sequence[TopicEndpointInfo]) -> QoSProfile:
    """A profile compatible with every publisher: the strongest reliability and durability all offer."""
    reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    latched = all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=SUBSCRIPTION_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def offered_qos(publishers: Sequence[TopicEndpointInfo]) -> tuple[Qos, ...]:
    """The publishers' offered profiles in rosbags' form, as rosbag2 stores them in metadata.yaml."""
    def time(duration) -> QosTime:
        return QosTime(duration.nanoseconds // 1_000_000_000, duration.nanoseconds % 1_000_000_000)

    return tuple(Qos(QosHistory(int(q.history)), q.depth, QosReliability(int(q.reliability)),
                     QosDurability(int(q.durability)), time(q.deadline), time(q.lifespan),
                     QosLiveliness(int(q.liveliness)), time(q.liveliness_lease_duration),
                     q.avoid_ros_namespace_conventions)
                 for q in (p.qos_profile for p in publishers))
