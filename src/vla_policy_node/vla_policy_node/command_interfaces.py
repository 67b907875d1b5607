"""Where the executor's safe joint targets go: a joint trajectory controller, MoveIt Servo, or MoveIt.

Every interface receives the same thing once per control tick: the safe joint target in the
embodiment's joint order (arm joints and gripper joints), and the next rows of the chunk
already passed through the safety filter. Each sends it the way its consumer expects:

- `JointTrajectoryCommand`: trajectory_msgs/JointTrajectory to a ros2_control joint trajectory
  controller, the target at time_from_start = dt (and the checked look-ahead rows at 2 dt, ...);
  gripper joints in the same trajectory or, with a gripper topic, as a
  std_msgs/Float64MultiArray for a forward position controller. The header stamp is zero, which
  the controller reads as "start on receipt": stamped with the sender's `now`, a trajectory
  ending one tick later is dropped by the controller as ending in the past whenever transport
  takes longer than a tick or the two computers' clocks disagree by that much.

Commands are published keep-last 1: a controller that falls behind gets the newest command, not
a queue of stale ones.
- `ServoPoseCommand`: geometry_msgs/PoseStamped of each arm's end effector (forward kinematics of
  the safe target) for MoveIt Servo's pose tracking, plus the gripper topic.
- `MoveItPyCommand`: at each new chunk, the chunk's safe waypoints as a time-parameterised
  RobotTrajectory of the planning group's joints only (a gripper is its own group in MoveIt: it
  goes to the gripper topic), starting from the measured joint state (MoveIt's trajectory
  execution refuses a trajectory whose start deviates from where the robot is),
  validity-checked against the planning scene and executed through moveit_py. moveit_py is not
  installable from PyPI: here it is exercised against a stand-in of its API (the calls of
  moveit_py 2.x: RobotState.joint_positions, RobotTrajectory.set_robot_trajectory_msg,
  PlanningScene.is_path_valid, MoveItPy.execute); on a ROS install with MoveIt 2 against the real one.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_core.embodiment import EmbodimentSpec
from vla_core.geometry import transform_to_pose7
from vla_core.kinematics import RobotKinematics

from .chunk_messages import array_to_pose
from .ros_time import seconds_to_duration

COMMAND_INTERFACES = ("joint_trajectory", "servo", "moveit")
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)  # the newest command only


class CommandInterface(Protocol):
    def send(self, target: np.ndarray, lookahead: np.ndarray, dt: float, new_chunk: bool) -> None:
        """Command `target` (state_dim,) now; `lookahead` (n, state_dim) are the checked rows after it."""


class _GripperSplit:
    """Splits the embodiment's joint vector into arm joints and gripper joints."""

    def __init__(self, spec: EmbodimentSpec, node: Node, gripper_topic: str) -> None:
        grippers = [arm.gripper_joint for arm in spec.arms if arm.gripper_joint]
        self.separate = bool(gripper_topic) and bool(grippers)
        excluded = set(grippers) if self.separate else set()
        self.names = [n for n in spec.joint_names if n not in excluded]
        self.columns = [spec.joint_names.index(n) for n in self.names]
        self.gripper_columns = [spec.joint_names.index(n) for n in grippers]
        self.gripper_pub = (node.create_publisher(Float64MultiArray, gripper_topic, COMMAND_QOS) if self.separate
                            else None)

    def send_gripper(self, target: np.ndarray) -> None:
        if self.gripper_pub is not None:
            self.gripper_pub.publish(Float64MultiArray(data=target[self.gripper_columns].tolist()))


class JointTrajectoryCommand:
    def __init__(self, node: Node, spec: EmbodimentSpec, topic: str, gripper_topic: str = "") -> None:
        self._node = node
        self._split = _GripperSplit(spec, node, gripper_topic)
        self._pub = node.create_publisher(JointTrajectory, topic, COMMAND_QOS)
        self.topic = topic

    def send(self, target: np.ndarray, lookahead: np.ndarray, dt: float, new_chunk: bool) -> None:
        columns = self._split.columns
        msg = JointTrajectory(joint_names=self._split.names)  # stamp zero: the controller starts it on receipt
        for step, row in enumerate([target, *lookahead], start=1):
            msg.points.append(JointTrajectoryPoint(positions=row[columns].tolist(),
                                                   time_from_start=seconds_to_duration(step * dt)))
        self._pub.publish(msg)
        self._split.send_gripper(target)


class ServoPoseCommand:
    def __init__(self, node: Node, spec: EmbodimentSpec, kinematics: RobotKinematics, topics: Sequence[str],
                 gripper_topic: str = "") -> None:
        if len(topics) != len(spec.arms):
            raise ValueError(f"servo needs one pose topic per arm of {spec.name} ({len(spec.arms)}), got {list(topics)}")
        self._node = node
        self._spec = spec
        self._kinematics = kinematics
        self._split = _GripperSplit(spec, node, gripper_topic)
        self._pubs = [node.create_publisher(PoseStamped, topic, COMMAND_QOS) for topic in topics]

    def send(self, target: np.ndarray, lookahead: np.ndarray, dt: float, new_chunk: bool) -> None:
        stamp = self._node.get_clock().now().to_msg()
        for pub, pose in zip(self._pubs, self._kinematics.forward(target)):
            msg = PoseStamped(pose=array_to_pose(transform_to_pose7(pose)))
            msg.header.stamp = stamp
            msg.header.frame_id = self._spec.base_frame
            pub.publish(msg)
        self._split.send_gripper(target)


class MoveItPyCommand:
    """Executes each new chunk's safe waypoints with moveit_py (needs a MoveIt 2 install)."""

    def __init__(self, node: Node, spec: EmbodimentSpec, planning_group: str,
                 measured: Callable[[], np.ndarray | None], gripper_topic: str = "") -> None:
        try:
            from moveit.core.robot_state import RobotState  # type: ignore[import-not-found]
            from moveit.core.robot_trajectory import RobotTrajectory  # type: ignore[import-not-found]
            from moveit.planning import MoveItPy  # type: ignore[import-not-found]
        except ImportError as error:
            raise RuntimeError("command_interface 'moveit' needs moveit_py (ros-<distro>-moveit-py), which is not "
                               "installed; use 'joint_trajectory' or 'servo'") from error
        self._RobotState, self._RobotTrajectory = RobotState, RobotTrajectory
        self._spec = spec
        self._group = planning_group
        self._measured = measured
        self._moveit = MoveItPy(node_name=f"{node.get_name()}_moveit_py")
        self._model = self._moveit.get_robot_model()
        group_joints = list(self._model.get_joint_model_group(planning_group).active_joint_model_names)
        unknown = [name for name in group_joints if name not in spec.joint_names]
        if unknown:
            raise ValueError(f"planning group {planning_group!r} moves joints {unknown} that {spec.name} does not "
                             f"have (it has {list(spec.joint_names)})")
        self._names = group_joints
        self._columns = [spec.joint_names.index(name) for name in group_joints]
        self._gripper = _GripperSplit(spec, node, gripper_topic)
        self._busy = threading.Lock()
        self._logger = node.get_logger()

    def send(self, target: np.ndarray, lookahead: np.ndarray, dt: float, new_chunk: bool) -> None:
        self._gripper.send_gripper(target)  # every tick, as the other interfaces do
        if not new_chunk:
            return  # MoveIt executes whole chunks; the ticks in between are its controller's business
        measured = self._measured()
        if measured is None:
            self._logger.warning("no measured joint state to start a MoveIt trajectory from; chunk skipped")
            return
        if not self._busy.acquire(blocking=False):
            self._logger.warning("MoveIt is still executing the previous chunk; this chunk's waypoints are skipped")
            return
        waypoints = np.vstack([target[None], lookahead])
        threading.Thread(target=self._execute, args=(np.asarray(measured, dtype=np.float64).copy(), waypoints, dt),
                         daemon=True).start()

    def _execute(self, measured: np.ndarray, waypoints: np.ndarray, dt: float) -> None:
        from moveit_msgs.msg import RobotTrajectory as RobotTrajectoryMsg  # type: ignore[import-not-found]

        try:
            message = RobotTrajectoryMsg()
            message.joint_trajectory.joint_names = list(self._names)
            message.joint_trajectory.points = [
                JointTrajectoryPoint(positions=row[self._columns].tolist(),
                                     time_from_start=seconds_to_duration((i + 1) * dt))
                for i, row in enumerate(waypoints)]
            start = self._RobotState(self._model)  # where the robot is: the first waypoint is one tick ahead
            start.joint_positions = dict(zip(self._spec.joint_names, measured.tolist()))
            start.update()
            trajectory = self._RobotTrajectory(self._model)
            trajectory.set_robot_trajectory_msg(start, message)
            trajectory.joint_model_group_name = self._group
            with self._moveit.get_planning_scene_monitor().read_only() as scene:
                if not scene.is_path_valid(trajectory, self._group):
                    self._logger.error("chunk waypoints are in collision in the planning scene; not executed")
                    return
            self._moveit.execute(trajectory, controllers=[])
        except Exception as error:  # noqa: BLE001 - this thread's boundary: say why the chunk did not run
            self._logger.error(f"MoveIt could not execute the chunk: {type(error).__name__}: {error}")
        finally:
            self._busy.release()
