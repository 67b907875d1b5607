"""The MoveIt command interface against a stand-in of moveit_py's API (moveit_py is not on PyPI).

What it must get right whatever MoveIt does with the trajectory: the trajectory starts from the
measured joint state (MoveIt refuses one whose start is not where the robot is), it names only the
planning group's joints (the gripper is commanded on its own topic), and its points are the safe
rows one tick apart.
"""
from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from vla_core.embodiment import load_embodiment
from vla_policy_node.command_interfaces import MoveItPyCommand

pytestmark = pytest.mark.ros
SO101 = load_embodiment("so101")
ARM = [name for name in SO101.joint_names if name != SO101.arms[0].gripper_joint]


class FakeMoveIt:
    """Records what MoveItPyCommand hands to moveit_py."""

    executed: list = []
    done = threading.Event()

    class Group:
        active_joint_model_names = ARM

    class Model:
        def get_joint_model_group(self, name: str):
            assert name == "arm"
            return FakeMoveIt.Group()

    class RobotState:
        def __init__(self, model) -> None:
            self.joint_positions: dict = {}

        def update(self) -> None:
            pass

    class RobotTrajectory:
        def __init__(self, model) -> None:
            self.joint_model_group_name = ""

        def set_robot_trajectory_msg(self, start, message) -> None:
            self.start, self.message = start, message

    class Scene:
        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def is_path_valid(self, trajectory, group: str) -> bool:
            return True

    class Monitor:
        def read_only(self):
            return FakeMoveIt.Scene()

    class MoveItPy:
        def __init__(self, node_name: str) -> None:
            pass

        def get_robot_model(self):
            return FakeMoveIt.Model()

        def get_planning_scene_monitor(self):
            return FakeMoveIt.Monitor()

        def execute(self, trajectory, controllers) -> None:
            FakeMoveIt.executed.append(trajectory)
            FakeMoveIt.done.set()


@pytest.fixture
def fake_moveit(monkeypatch: pytest.MonkeyPatch) -> type[FakeMoveIt]:
    modules = {name: types.ModuleType(name) for name in ("moveit", "moveit.core", "moveit.core.robot_state",
                                                          "moveit.core.robot_trajectory", "moveit.planning",
                                                          "moveit_msgs", "moveit_msgs.msg")}
    modules["moveit.core.robot_state"].RobotState = FakeMoveIt.RobotState
    modules["moveit.core.robot_trajectory"].RobotTrajectory = FakeMoveIt.RobotTrajectory
    modules["moveit.planning"].MoveItPy = FakeMoveIt.MoveItPy
    modules["moveit_msgs.msg"].RobotTrajectory = lambda: types.SimpleNamespace(joint_trajectory=JointTrajectory())
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    FakeMoveIt.executed.clear()
    FakeMoveIt.done.clear()
    return FakeMoveIt


def test_a_chunk_starts_from_the_measured_joints_and_moves_only_the_planning_group(fake_moveit) -> None:
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("moveit_command", context=context)
    grippers: list[Float64MultiArray] = []
    node.create_subscription(Float64MultiArray, "gripper/command", grippers.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        measured = np.array([0.0, -0.5, 0.5, 0.3, 0.0, 0.5])
        command = MoveItPyCommand(node, SO101, "arm", lambda: measured, gripper_topic="gripper/command")
        target = measured + 0.01
        lookahead = np.vstack([measured + 0.02, measured + 0.03])
        command.send(target, lookahead, 0.05, new_chunk=True)
        assert fake_moveit.done.wait(5.0), "nothing was executed"
        [trajectory] = fake_moveit.executed
        assert trajectory.start.joint_positions == dict(zip(SO101.joint_names, measured.tolist())), \
            "the trajectory starts where the robot is, not at its first target"
        sent = trajectory.message.joint_trajectory
        assert list(sent.joint_names) == ARM, "the gripper is not part of the arm's planning group"
        columns = [SO101.joint_names.index(name) for name in ARM]
        np.testing.assert_allclose([p.positions for p in sent.points],
                                   np.vstack([target, lookahead])[:, columns])
        assert [p.time_from_start.nanosec for p in sent.points] == [50_000_000, 100_000_000, 150_000_000]
        assert trajectory.joint_model_group_name == "arm"
        deadline = 50
        while not grippers and deadline:
            executor.spin_once(timeout_sec=0.1)
            deadline -= 1
        assert grippers and list(grippers[-1].data) == [target[SO101.joint_names.index(SO101.arms[0].gripper_joint)]]
    finally:
        node.destroy_node()
        context.try_shutdown()
