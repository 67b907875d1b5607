"""Action representations: exact round trips, base-frame invariance, the unified tensor."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vla_core.actions import (
    ACTION_SPACES,
    ArmState,
    ArmTrajectory,
    decode_chunk,
    encode_chunk,
    from_unified,
    get_action_space,
    to_unified,
)
from vla_core.geometry import (
    invert_transform,
    make_transform,
    matrix_to_rot6d,
    pose7_to_transform,
    rot6d_to_matrix,
    rotation_angle_between,
    transform_to_pose7,
)

POSE_SPACES = [name for name, space in ACTION_SPACES.items() if space.uses_poses]
JOINT_SPACES = [name for name, space in ACTION_SPACES.items() if not space.uses_poses]


def random_pose(rng: np.random.Generator) -> np.ndarray:
    return make_transform(rng.uniform(-1, 1, 3), Rotation.random(random_state=rng).as_matrix())


def random_walk(rng: np.random.Generator, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    start = random_pose(rng)
    poses, current = [], start
    for _ in range(horizon):
        step = make_transform(rng.normal(0, 0.05, 3), Rotation.from_rotvec(rng.normal(0, 0.2, 3)).as_matrix())
        current = current @ step
        poses.append(current)
    return start, np.stack(poses)


seeds = st.integers(0, 2**32 - 1)
horizons = st.integers(1, 20)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, horizon=horizons, arms=st.integers(1, 2))
@pytest.mark.parametrize("space", POSE_SPACES)
def test_pose_spaces_round_trip_to_1e9(space: str, seed: int, horizon: int, arms: int) -> None:
    rng = np.random.default_rng(seed)
    starts, trajectories = [], []
    for _ in range(arms):
        start, poses = random_walk(rng, horizon)
        starts.append(ArmState(pose=start))
        trajectories.append(ArmTrajectory(poses=poses, gripper=rng.integers(0, 2, horizon).astype(float)))
    chunk = encode_chunk(space, trajectories, starts, with_gripper=True)
    assert chunk.shape == (horizon, 10 * arms)
    decoded = decode_chunk(space, chunk, starts, joints_per_arm=[6] * arms, with_gripper=True)
    for original, back in zip(trajectories, decoded):
        np.testing.assert_allclose(back.poses, original.poses, atol=1e-9, rtol=0)
        np.testing.assert_array_equal(back.gripper, original.gripper)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, horizon=horizons, joints=st.integers(1, 8))
@pytest.mark.parametrize("space", JOINT_SPACES)
def test_joint_spaces_round_trip_to_1e9(space: str, seed: int, horizon: int, joints: int) -> None:
    rng = np.random.default_rng(seed)
    start = rng.uniform(-2, 2, joints)
    trajectory = ArmTrajectory(joints=start + np.cumsum(rng.normal(0, 0.1, (horizon, joints)), axis=0),
                               gripper=rng.integers(0, 2, horizon).astype(float))
    chunk = encode_chunk(space, [trajectory], [ArmState(joints=start)], with_gripper=True)
    assert chunk.shape == (horizon, joints + 1)
    (back,) = decode_chunk(space, chunk, [ArmState(joints=start)], [joints], with_gripper=True)
    np.testing.assert_allclose(back.joints, trajectory.joints, atol=1e-9, rtol=0)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, horizon=horizons)
def test_eef_relative_decodes_to_the_same_world_targets_in_a_moved_base_frame(seed: int, horizon: int) -> None:
    rng = np.random.default_rng(seed)
    start, poses = random_walk(rng, horizon)  # expressed in base frame A (= world)
    chunk = encode_chunk("eef_relative", [ArmTrajectory(poses=poses)], [ArmState(pose=start)], with_gripper=False)
    world_from_b = random_pose(rng)  # the base moved: frame B
    start_in_b = invert_transform(world_from_b) @ start
    (decoded,) = decode_chunk("eef_relative", chunk, [ArmState(pose=start_in_b)], [6], with_gripper=False)
    np.testing.assert_allclose(world_from_b[None] @ decoded.poses, poses, atol=1e-9, rtol=0)


def test_eef_relative_is_the_pose_in_the_start_frame() -> None:
    start = make_transform(np.array([0.3, 0.0, 0.2]), Rotation.from_euler("z", 90, degrees=True).as_matrix())
    target = start @ make_transform(np.array([0.1, 0.0, 0.0]), np.eye(3))  # 10 cm along the EEF's own x
    chunk = encode_chunk("eef_relative", [ArmTrajectory(poses=target[None])], [ArmState(pose=start)], False)
    np.testing.assert_allclose(chunk[0], [0.1, 0, 0, 1, 0, 0, 0, 1, 0], atol=1e-12)
    world = encode_chunk("world_relative", [ArmTrajectory(poses=target[None])], [ArmState(pose=start)], False)
    np.testing.assert_allclose(world[0, :3], [0.0, 0.1, 0.0], atol=1e-12)


def test_joint_rows_are_absolute_relative_to_the_start_or_to_the_previous_row() -> None:
    start = np.array([0.5, -1.0])
    joints = np.array([[0.6, -1.0], [0.8, -0.9]])
    trajectory, starts = [ArmTrajectory(joints=joints)], [ArmState(joints=start)]
    np.testing.assert_allclose(encode_chunk("joint_abs", trajectory, starts, False), joints)
    np.testing.assert_allclose(encode_chunk("joint_relative", trajectory, starts, False), [[0.1, 0.0], [0.3, 0.1]])
    np.testing.assert_allclose(encode_chunk("joint_delta", trajectory, starts, False), [[0.1, 0.0], [0.2, 0.1]])


def test_rot6d_is_exact_on_rotations_and_gram_schmidt_repairs_noise() -> None:
    rotations = Rotation.random(50, random_state=1).as_matrix()
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(rotations)), rotations, atol=1e-12)
    noisy = matrix_to_rot6d(rotations) + np.random.default_rng(2).normal(0, 0.01, (50, 6))
    repaired = rot6d_to_matrix(noisy)
    np.testing.assert_allclose(repaired @ np.swapaxes(repaired, 1, 2), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(repaired), 1.0, atol=1e-12)
    assert np.all(rotation_angle_between(repaired, rotations) < 0.05)


def test_pose7_round_trip() -> None:
    transforms = np.stack([random_pose(np.random.default_rng(i)) for i in range(10)])
    np.testing.assert_allclose(pose7_to_transform(transform_to_pose7(transforms)), transforms, atol=1e-12)


def test_gripper_is_binary_after_decoding() -> None:
    rows = np.array([[0.0, 0.2], [0.0, 0.7]])
    (back,) = decode_chunk("joint_abs", rows, [ArmState(joints=np.zeros(1))], [1], with_gripper=True)
    np.testing.assert_array_equal(back.gripper, [0.0, 1.0])


def test_unified_tensor_pads_and_masks() -> None:
    chunk = np.arange(6.0).reshape(2, 3)
    unified, mask = to_unified(chunk, 5)
    assert unified.shape == mask.shape == (2, 5)
    assert mask[:, :3].all() and not mask[:, 3:].any() and (unified[:, 3:] == 0).all()
    np.testing.assert_array_equal(from_unified(unified, 3), chunk)
    with pytest.raises(ValueError, match="more than the unified tensor's 2"):
        to_unified(chunk, 2)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown action space 'polar'; expected one of eef_relative"):
        get_action_space("polar")
    with pytest.raises(ValueError, match="eef_relative needs the chunk-start pose"):
        encode_chunk("eef_relative", [ArmTrajectory(poses=np.eye(4)[None])], [ArmState()], False)
    with pytest.raises(ValueError, match=r"must be \(H, 20\), got \(3, 10\)"):
        decode_chunk("abs_eef", np.zeros((3, 10)), [ArmState(), ArmState()], [6, 6], with_gripper=True)


def test_channel_names_follow_the_arm_blocks() -> None:
    space = get_action_space("eef_relative")
    names = space.arm_channel_names("left", ["j1", "j2"], with_gripper=True)
    assert names[:3] == ["left/x", "left/y", "left/z"] and names[-1] == "left/gripper" and len(names) == 10
    assert get_action_space("joint_abs").arm_channel_names("arm", ["j1", "j2"], False) == ["arm/j1", "arm/j2"]
