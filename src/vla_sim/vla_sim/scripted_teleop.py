"""A scripted teleoperator node: drives the simulated arm through ROS like a leader arm would.

On every new episode announced on `task_state` it waits `start_delay` seconds of simulated
time (an operator's moment to look; the recording has begun by then), plans the task from the
joint states measured after the reset with the embodiment's scripted teleoperator
(`vla_core.sim.factory`: SO-101 or ALOHA): a pick of the target cube, and for tasks with a
destination (cube_in_bin) the place at the message's `goal_pose`. It then streams the plan at
`rate_hz` as single-point `trajectory_msgs/JointTrajectory` messages on the embodiment's
command topic, each reached `1/rate_hz` after it arrives, exactly what a leader-arm
teleoperation node sends to a joint trajectory controller. The recorder records that topic as
the action label. After the plan it keeps sending the last position, as a resting leader arm
does, and says once on `~/plan_finished` (`std_msgs/UInt64`, latched) which episode's plan
has been sent to its end: the operator's cue to press "stop".

The plan's clock is the stamp of the newest joint state, not the node clock: `/clock` on
another topic may lag the joint stream. Joint states belong to a new episode once one arrives
stamped at or after the episode's first task_state (the simulation stamps both at the same step,
and its clock never goes back); until then the newest joint state may still be one measured
before the reset.

Its timer runs on simulated time, so it needs a simulation it can keep up with: real time, as a
leader arm streams. A simulation run as fast as a loaded CPU allows can advance several control
periods between two of its callbacks. The commands then thin out, and a grasp can be missed:
the likely cause of the two missed grasps of the ROS test, run that way on a loaded CPU.
"""
from __future__ import annotations

import sys

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import UInt64
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from vla_core.embodiment import load_embodiment
from vla_core.sim.factory import make_teleop
from vla_core.sim.tasks import TASKS
from vla_core.sim.teleop import TeleopTrajectory, UnreachableCube
from vla_policy_node.node_main import run_node
from vla_policy_node.parameters import Param, declare_and_read, in_range
from vla_policy_node.ros_time import seconds_to_duration, stamp_to_seconds

from vla_msgs.msg import TaskState

PARAMETERS = (
    Param("embodiment", "so101", "Embodiment profile of the robot it drives."),
    Param("rate_hz", 0.0, "Rate of the leader-arm positions it sends; 0 = the profile's control rate.",
          in_range(0.0, 200.0)),
    Param("seed", 0, "Seed of the demonstrations' variation (mixed with the episode number)."),
    Param("tremor", 0.002, "Standard deviation of the hand tremor in radians.", in_range(0.0, 0.05)),
    Param("start_delay", 0.5, "Simulated seconds from a new episode's first task_state to the first motion.",
          in_range(0.0, 10.0)),
)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ScriptedTeleopNode(Node):
    def __init__(self) -> None:
        super().__init__("scripted_teleop")
        self.params = p = declare_and_read(self, PARAMETERS)
        self.spec = load_embodiment(p["embodiment"])
        self.rate_hz = p["rate_hz"] or self.spec.control_rate_hz
        self.script = make_teleop(self.spec, self.rate_hz, tremor=p["tremor"])
        self.joints: np.ndarray | None = None
        self.joints_stamp = 0.0  # simulated time of `joints`
        self.episode: int | None = None
        self.pending: TaskState | None = None  # an episode announced but not planned yet
        self.plan: TeleopTrajectory | None = None
        self.plan_start = 0.0
        self.finished = False
        self.command_pub = self.create_publisher(JointTrajectory, self.spec.command_topic, RELIABLE)
        self.finished_pub = self.create_publisher(UInt64, "~/plan_finished", LATCHED)
        self.create_subscription(JointState, self.spec.joint_state_topic, self.on_joints, qos_profile_sensor_data)
        self.create_subscription(TaskState, "task_state", self.on_task, RELIABLE)
        self.create_timer(1.0 / self.rate_hz, self.send)

    def on_joints(self, msg: JointState) -> None:
        order = {name: i for i, name in enumerate(msg.name)}
        if all(name in order for name in self.spec.joint_names):
            self.joints = np.array([msg.position[order[name]] for name in self.spec.joint_names])
            self.joints_stamp = stamp_to_seconds(msg.header.stamp)

    def on_task(self, msg: TaskState) -> None:
        if msg.episode == self.episode:
            return
        self.episode, self.pending, self.plan, self.finished = msg.episode, msg, None, False

    def start_plan(self, msg: TaskState) -> None:
        """Plan from the current joints; an unknown task or an unreachable cube means no motion."""
        task = TASKS.get(msg.task)
        if task is None:
            self.get_logger().error(f"episode {msg.episode}: unknown task {msg.task!r} (known: {sorted(TASKS)}); "
                                    "not moving")
            return
        position = msg.target_pose.position
        yaw = 2.0 * np.arctan2(msg.target_pose.orientation.z, msg.target_pose.orientation.w)
        goal = msg.goal_pose.position
        place_at = np.array([goal.x, goal.y, goal.z]) if task.needs_bin else None
        rng = np.random.default_rng([self.params["seed"], msg.episode])
        try:
            self.plan = self.script.plan(self.joints, np.array([position.x, position.y, position.z]), yaw, rng,
                                         place_at=place_at)
        except UnreachableCube as error:
            self.get_logger().error(f"episode {msg.episode}: {error}; not moving")
            return
        self.plan_start = self.joints_stamp
        self.get_logger().info(f"episode {msg.episode}: {msg.instruction} ({self.plan.duration:.1f} s)")

    def send(self) -> None:
        pending = self.pending
        # a joint state stamped after the episode's start was measured after the reset
        if pending is not None and self.joints is not None \
                and self.joints_stamp >= stamp_to_seconds(pending.header.stamp) + self.params["start_delay"]:
            self.pending = None
            self.start_plan(pending)
        if self.plan is None:
            return
        elapsed = self.joints_stamp - self.plan_start
        point = JointTrajectoryPoint(positions=self.plan.at(elapsed).tolist(),
                                     time_from_start=seconds_to_duration(1.0 / self.rate_hz))
        self.command_pub.publish(JointTrajectory(joint_names=list(self.spec.joint_names), points=[point]))
        if not self.finished and elapsed >= self.plan.duration:
            self.finished = True
            self.finished_pub.publish(UInt64(data=self.episode))


def main() -> int:
    return run_node("scripted_teleop", ScriptedTeleopNode, sys.argv,
                    after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())
