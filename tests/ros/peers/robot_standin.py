"""A kinematic robot behind ROS topics, standing in for a driver in tests (and until the simulation).

Publishes `joint_states` at --rate Hz and camera images (`<camera>/image_raw`, rgb8, a pattern
that follows the joints so observations change as the robot moves), and follows
`trajectory_msgs/JointTrajectory` on --command-topic the way a ros2_control joint trajectory
controller does: it interpolates linearly between points by `time_from_start`, starting from the
trajectory's header stamp (or its arrival when the stamp is zero). Every trajectory received is
logged on stdout as `TRAJECTORY <receive time> <n points>`, for tests to count. With
`--image-transport compressed` the cameras are JPEG `CompressedImage`s on
`<camera>/image_raw/compressed`, as image_transport's compressed plugin publishes them. With
`--camera-delay S` each image is stamped when it is captured and published S seconds later, as a
camera driver with exposure, readout and transport latency does.

    python robot_standin.py --joints a b c --cameras main wrist --rate 100 --image-size 64
"""
from __future__ import annotations

import argparse
import collections
import functools
import io
import sys

import numpy as np
from PIL import Image as PILImage
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory
from vla_policy_node.node_main import run_node


class RobotStandIn(Node):
    def __init__(self, joints: list[str], cameras: list[str], rate: float, image_size: int, command_topic: str,
                 position: list[float] | None, compressed: bool = False, camera_delay: float = 0.0) -> None:
        super().__init__("robot_standin")
        self.camera_delay = camera_delay
        self.delayed: collections.deque = collections.deque()  # (publish at, publisher, message)
        self.joints = joints
        self.position = np.array(position, dtype=float) if position else np.zeros(len(joints))
        self.image_size = image_size
        self.trajectory: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None  # start, times, points, from
        self.joint_pub = self.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self.compressed = compressed
        image_type, suffix = (CompressedImage, "/compressed") if compressed else (Image, "")
        self.image_pubs = {c: self.create_publisher(image_type, f"{c}/image_raw{suffix}", qos_profile_sensor_data)
                           for c in cameras}
        self.create_subscription(JointTrajectory, command_topic, self.on_trajectory,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.create_timer(1.0 / rate, self.step)
        self.create_timer(1.0 / 30.0, self.publish_images)
        if camera_delay > 0:
            self.create_timer(0.01, self.publish_delayed)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    def on_trajectory(self, msg: JointTrajectory) -> None:
        order = [msg.joint_names.index(name) for name in self.joints]
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec / 1e9 for p in msg.points])
        points = np.array([[p.positions[i] for i in order] for p in msg.points])
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec / 1e9
        start = stamp if stamp > 0 else self.now()
        self.trajectory = (start, times, points, self.position.copy())
        print(f"TRAJECTORY {self.now():.6f} {len(points)}", flush=True)

    def step(self) -> None:
        if self.trajectory is not None:
            start, times, points, origin = self.trajectory
            t = self.now() - start
            knots_t = np.concatenate([[0.0], times])
            knots = np.vstack([origin, points])
            self.position = np.array([np.interp(t, knots_t, knots[:, j]) for j in range(len(self.joints))])
        msg = JointState(name=self.joints, position=self.position.tolist(), velocity=[0.0] * len(self.joints))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.joint_pub.publish(msg)

    @functools.lru_cache(maxsize=64)
    def pixels(self, camera_index: int, shade: int) -> bytes:
        """A flat image of `shade` with one channel inverted per camera (cached: this runs at 30 Hz)."""
        pixels = np.full((self.image_size, self.image_size, 3), shade, np.uint8)
        pixels[:, :, camera_index % 3] = 255 - shade
        return pixels.tobytes()

    @functools.lru_cache(maxsize=64)
    def jpeg(self, camera_index: int, shade: int) -> bytes:
        buffer = io.BytesIO()
        pixels = np.frombuffer(self.pixels(camera_index, shade), np.uint8).reshape(self.image_size, self.image_size, 3)
        PILImage.fromarray(pixels).save(buffer, format="JPEG")
        return buffer.getvalue()

    def publish_images(self) -> None:
        stamp = self.get_clock().now().to_msg()
        shade = int(np.clip(128 + 60 * self.position.sum(), 0, 255))
        for index, (camera, publisher) in enumerate(self.image_pubs.items()):
            if self.compressed:
                msg = CompressedImage(format="jpeg", data=self.jpeg(index, shade))
            else:
                msg = Image(height=self.image_size, width=self.image_size, encoding="rgb8",
                            step=3 * self.image_size, data=self.pixels(index, shade))
            msg.header.stamp = stamp
            msg.header.frame_id = f"{camera}_optical_frame"
            if self.camera_delay > 0:
                self.delayed.append((self.now() + self.camera_delay, publisher, msg))
            else:
                publisher.publish(msg)

    def publish_delayed(self) -> None:
        while self.delayed and self.delayed[0][0] <= self.now():
            _, publisher, msg = self.delayed.popleft()
            publisher.publish(msg)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--joints", nargs="+", required=True)
    parser.add_argument("--cameras", nargs="*", default=["main"])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--command-topic", default="joint_trajectory")
    parser.add_argument("--position", type=float, nargs="*", help="initial joint positions (default zeros)")
    parser.add_argument("--image-transport", choices=("raw", "compressed"), default="raw")
    parser.add_argument("--camera-delay", type=float, default=0.0, help="seconds from capture to publication")
    args, ros_args = parser.parse_known_args()  # leaves --ros-args (namespace, remaps) to rclpy
    return run_node("robot_standin", lambda: RobotStandIn(args.joints, args.cameras, args.rate, args.image_size,
                                                         args.command_topic, args.position,
                                                         args.image_transport == "compressed", args.camera_delay),
                    [sys.argv[0], *ros_args], after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())
