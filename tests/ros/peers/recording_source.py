"""A teleoperation scene in numbers, for recorder tests: every topic of an SO-101 recording, countable.

At --rate Hz it publishes tick n on each of `front/image_raw`, `wrist/image_raw` (rgb8, every
byte n % 256), `joint_states` (position j = n / 1000 + j), the teleoperator's
`joint_trajectory_controller/joint_trajectory` (one point, position j = n / 1000 - j) and
`operator_note` (std_msgs/String "note n"). Every header carries frame_id = str(n) and the
publishing time as its stamp, so a test reading the bag can tell exactly which ticks were
recorded, whether any is missing in between, and compare values and stamps.
Publishers are reliable (depth 100), as a recorder's sources must be for nothing to be lost.

    python recording_source.py --rate 30 --image-size 32
"""
from __future__ import annotations

import argparse
import sys

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from vla_policy_node.node_main import run_node

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class RecordingSource(Node):
    def __init__(self, rate: float, image_size: int) -> None:
        super().__init__("recording_source")
        self.image_size = image_size
        self.tick = 0
        self.images = {c: self.create_publisher(Image, f"{c}/image_raw", RELIABLE) for c in ("front", "wrist")}
        self.joints = self.create_publisher(JointState, "joint_states", RELIABLE)
        self.command = self.create_publisher(JointTrajectory, "joint_trajectory_controller/joint_trajectory", RELIABLE)
        self.note = self.create_publisher(String, "operator_note", RELIABLE)
        self.create_timer(1.0 / rate, self.publish)

    def publish(self) -> None:
        n, stamp = self.tick, self.get_clock().now().to_msg()
        self.tick += 1
        size = self.image_size
        for publisher in self.images.values():
            image = Image(height=size, width=size, encoding="rgb8", step=size * 3, data=bytes([n % 256]) * size * size * 3)
            image.header.stamp, image.header.frame_id = stamp, str(n)
            publisher.publish(image)
        joints = JointState(name=JOINTS, position=[n / 1000 + j for j in range(len(JOINTS))])
        joints.header.stamp, joints.header.frame_id = stamp, str(n)
        self.joints.publish(joints)
        command = JointTrajectory(joint_names=JOINTS,
                                  points=[JointTrajectoryPoint(positions=[n / 1000 - j for j in range(len(JOINTS))])])
        command.header.stamp, command.header.frame_id = stamp, str(n)
        self.command.publish(command)
        self.note.publish(String(data=f"note {n}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--image-size", type=int, default=32)
    args, ros_args = parser.parse_known_args()
    return run_node("recording_source", lambda: RecordingSource(args.rate, args.image_size), ros_args,
                    after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())
