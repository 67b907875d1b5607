"""A scripted teleoperator node: drives the simulated arm through ROS like a leader arm would.

On every new episode announced on `task_state` it plans a pick of the target cube from the
current `joint_states` with the embodiment's scripted teleoperator (`vla_core.sim.factory`:
SO-101 or ALOHA), then streams the plan at `rate_hz` as
single-point `trajectory_msgs/JointTrajectory` messages on the embodiment's command topic,
each reached `1/rate_hz` after it arrives, exactly what a leader-arm teleoperation node sends
to a joint trajectory controller. The recorder records that topic as the action label. After
the plan it keeps sending the last position, as a resting leader arm does.
"""
from __future__ import annotations

import sys

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from vla_core.embodiment import load_embodiment
from vla_core.sim.factory import make_teleop
from vla_core.sim.teleop import TeleopTrajectory, UnreachableCube
from vla_policy_node.node_main import run_node
from vla_policy_node.parameters import Param, declare_and_read, in_range
from vla_policy_node.ros_time import seconds_to_duration

from vla_msgs.msg import TaskState

PARAMETERS = (
    Param("embodiment", "so101", "Embodiment profile of the robot it drives."),
    Param("rate_hz", 0.0, "Rate of the leader-arm positions it sends; 0 = the profile's control rate.",
          in_range(0.0, 200.0)),
    Param("seed", 0, "Seed of the demonstrations' variation (mixed with the episode number)."),
    Param("tremor", 0.002, "Standard deviation of the hand tremor in radians.", in_range(0.0, 0.05)),
)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class ScriptedTeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("scripted_teleop")
        self.params = p = declare_and_read(self, PARAMETERS)
        self.spec = load_embodiment(p["embodiment"])
        self.rate_hz = p["rate_hz"] or self.spec.control_rate_hz
        self.script = make_teleop(self.spec, self.rate_hz, tremor=p["tremor"])
        self.joints: np.ndarray | None = None
        self.episode: int | None = None
        self.plan: TeleopTrajectory | None = None
        self.plan_start = 0.0
        self.command_pub = self.create_publisher(JointTrajectory, self.spec.command_topic, RELIABLE)
        self.create_subscription(JointState, self.spec.joint_state_topic, self.on_joints, qos_profile_sensor_data)
        self.create_subscription(TaskState, "task_state", self.on_task, RELIABLE)
        self.create_timer(1.0 / self.rate_hz, self.send)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    def on_joints(self, msg: JointState) -> None:
        order = {name: i for i, name in enumerate(msg.name)}
        if all(name in order for name in self.spec.joint_names):
            self.joints = np.array([msg.position[order[name]] for name in self.spec.joint_names])

    def on_task(self, msg: TaskState) -> None:
        if msg.episode == self.episode or self.joints is None:
            return
        self.episode = msg.episode
        position = msg.target_pose.position
        yaw = 2.0 * np.arctan2(msg.target_pose.orientation.z, msg.target_pose.orientation.w)
        rng = np.random.default_rng([self.params["seed"], msg.episode])
        try:
            self.plan = self.script.plan(self.joints, np.array([position.x, position.y, position.z]), yaw, rng)
        except UnreachableCube as error:
            self.plan = None
            self.get_logger().error(f"episode {msg.episode}: {error}; not moving")
            return
        self.plan_start = self.now()
        self.get_logger().info(f"episode {msg.episode}: {msg.instruction} ({self.plan.duration:.1f} s)")

    def send(self) -> None:
        if self.plan is None:
            return
        point = JointTrajectoryPoint(positions=self.plan.at(self.now() - self.plan_start).tolist(),
                                     time_from_start=seconds_to_duration(1.0 / self.rate_hz))
        self.command_pub.publish(JointTrajectory(joint_names=list(self.spec.joint_names), points=[point]))


def main() -> int:
    return run_node("scripted_teleop", ScriptedTeleopNode, sys.argv,
                    after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())
