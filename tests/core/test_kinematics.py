"""Pinocchio kinematics of the shipped robots: FK agrees with MuJoCo, IK reaches random targets."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_core.embodiment import load_embodiment
from vla_core.geometry import rotation_angle_between
from vla_core.kinematics import RobotKinematics


@pytest.fixture(scope="module", params=["so101", "aloha"])
def kinematics(request: pytest.FixtureRequest) -> RobotKinematics:
    return RobotKinematics(load_embodiment(request.param))


def random_state(kin: RobotKinematics, rng: np.random.Generator, margin: float = 0.2) -> np.ndarray:
    lower, upper = kin.position_limits()
    span = upper - lower
    return rng.uniform(lower + margin * span, upper - margin * span)


def test_ik_reaches_random_reachable_targets_within_1mm_and_0_01rad(kinematics: RobotKinematics) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = random_state(kinematics, rng)
        targets = kinematics.forward(truth)
        seed = truth + rng.normal(0, 0.2, truth.shape)
        seed = np.clip(seed, *kinematics.position_limits())
        for arm_index, arm in enumerate(kinematics.spec.arms):
            result = kinematics.inverse(arm_index, targets[arm_index], seed)
            assert result.position_error < 1e-3, (arm.name, result)
            assert result.orientation_error < 0.01, (arm.name, result)
            lower, upper = kinematics.position_limits(arm.joint_names)
            assert np.all(result.joints >= lower) and np.all(result.joints <= upper)
            # check independently: FK of the solution is at the target
            solved = seed.copy()
            solved[[kinematics.spec.joint_names.index(n) for n in arm.joint_names]] = result.joints
            reached = kinematics.forward(solved)[arm_index]
            assert np.linalg.norm(reached[:3, 3] - targets[arm_index][:3, 3]) < 1e-3
            assert rotation_angle_between(reached[:3, :3], targets[arm_index][:3, :3]) < 0.01


def test_mjcf_forward_kinematics_matches_mujoco() -> None:
    spec = load_embodiment("aloha")
    kin = RobotKinematics(spec)
    model = mujoco.MjModel.from_xml_path(str(spec.robot_model_path()))
    data = mujoco.MjData(model)
    state = random_state(kin, np.random.default_rng(1))
    for name, value in zip(spec.joint_names, state):
        data.qpos[model.joint(name).qposadr[0]] = value
    mujoco.mj_kinematics(model, data)
    for arm, pose in zip(spec.arms, kin.forward(state)):
        body = model.body(arm.ee_frame).id
        np.testing.assert_allclose(pose[:3, 3], data.xpos[body], atol=1e-9)
        np.testing.assert_allclose(pose[:3, :3], data.xmat[body].reshape(3, 3), atol=1e-9)


def test_limits_come_from_the_model_and_bad_states_are_named() -> None:
    kin = RobotKinematics(load_embodiment("so101"))
    lower, upper = kin.position_limits(("shoulder_pan",))
    assert lower[0] == pytest.approx(-1.91986) and upper[0] == pytest.approx(1.91986)
    with pytest.raises(ValueError, match=r"joint state must have 6 values .* got shape \(5,\)"):
        kin.forward(np.zeros(5))


def test_a_five_joint_arm_meets_the_position_of_a_pose_it_cannot_orient() -> None:
    """A predicted pose is never exactly on a 5-joint arm's reachable set: IK must still put the
    tool where it was sent (within the decoder's 1 cm), pointing as close as the arm allows."""
    kin = RobotKinematics(load_embodiment("so101"))
    rng = np.random.default_rng(3)
    errors = []
    for _ in range(20):
        truth = random_state(kin, rng)
        target = kin.forward(truth)[0].copy()
        axis = rng.normal(size=3)
        tilt = Rotation.from_rotvec(0.15 * axis / np.linalg.norm(axis)).as_matrix()
        target[:3, :3] = target[:3, :3] @ tilt  # 0.15 rad off: outside what five joints can reach
        result = kin.inverse(0, target, truth)
        errors.append((result.position_error, result.orientation_error))
    position, orientation = np.array(errors).T
    assert position.max() < 0.01, f"position given up for orientation: {position.max() * 100:.1f} cm"
    assert orientation.max() < 0.3 and orientation.min() > 0.01, orientation  # as close as it can, not exact


def near_wrist_singularity(kin: RobotKinematics) -> np.ndarray:
    """The ALOHA with its right ViperX's wrist angle 0.02 rad from straight: forearm roll and
    wrist rotate turn about nearly the same axis."""
    state = np.zeros(kin.spec.state_dim)
    for joint, value in (("shoulder", 0.3), ("elbow", 0.2), ("wrist_angle", 0.02)):
        state[kin.spec.joint_names.index(f"vx300s_right/{joint}")] = value
    return state


def test_an_anchored_solve_gives_up_a_sliver_of_orientation_rather_than_swing_the_wrist() -> None:
    kin = RobotKinematics(load_embodiment("aloha"))
    state = near_wrist_singularity(kin)
    arm = 1
    columns = [kin.spec.joint_names.index(name) for name in kin.spec.arms[arm].joint_names]
    rolls = [columns[3], columns[5]]  # forearm_roll, wrist_rotate
    target = kin.forward(state)[arm].copy()
    target[:3, :3] = target[:3, :3] @ Rotation.from_rotvec([0.0, 0.0, 0.05]).as_matrix()
    target[:3, 3] += [0.01, -0.01, 0.005]

    exact = kin.inverse(arm, target, state)
    assert np.abs(exact.joints[[3, 5]] - state[rolls]).max() > 0.5, "the case must swing an exact solve's wrist"

    anchored = kin.inverse(arm, target, state, orientation_weight=0.1, anchor_weight=1e-3)
    assert np.abs(anchored.joints[[3, 5]] - state[rolls]).max() < 0.1, anchored.joints - state[columns]
    assert anchored.position_error < 1e-3, f"{anchored.position_error * 1000:.1f} mm"
    assert 0.005 < anchored.orientation_error < 0.05, anchored.orientation_error  # the sliver, given up


@pytest.mark.parametrize("name", ["so101", "aloha"])
def test_forward_many_is_forward_row_by_row(name: str) -> None:
    """The batch form `vla convert` uses for a dataset's end-effector poses gives the same numbers."""
    kinematics = RobotKinematics(load_embodiment(name))
    lower, upper = kinematics.position_limits()
    states = np.random.default_rng(3).uniform(lower, upper, size=(50, len(lower)))
    expected = np.stack([np.stack(kinematics.forward(state)) for state in states])
    assert np.array_equal(kinematics.forward_many(states), expected)
    with pytest.raises(ValueError, match="joint states must be"):
        kinematics.forward_many(states[:, :-1])
