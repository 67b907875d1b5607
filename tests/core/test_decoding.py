"""Chunk rows -> joint targets through IK, and prefix re-expression, on the shipped robots."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_core.actions import ArmState, ArmTrajectory, encode_chunk
from vla_core.embodiment import load_embodiment
from vla_core.geometry import rotation_angle_between
from vla_core.runtime.decoding import ChunkDecoder

from tests.core.test_kinematics import near_wrist_singularity

HORIZON = 8


@pytest.fixture(scope="module", params=["so101", "aloha"])
def decoder(request: pytest.FixtureRequest) -> ChunkDecoder:
    return ChunkDecoder(load_embodiment(request.param))


def smooth_joint_path(decoder: ChunkDecoder, rng: np.random.Generator) -> np.ndarray:
    """(H + 1, state_dim): a start state and H small steps, well inside the limits."""
    lower, upper = decoder.kinematics.position_limits()
    start = rng.uniform(lower + 0.3 * (upper - lower), upper - 0.3 * (upper - lower))
    steps = rng.normal(0, 0.02, (HORIZON, len(start)))
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


def chunk_rows_for(decoder: ChunkDecoder, path: np.ndarray, gripper: np.ndarray) -> np.ndarray:
    """Encode the motion of `path[1:]` relative to `path[0]` in the profile's action space."""
    start = decoder.start_from_joints(path[0])
    trajectories, starts = [], []
    for index, arm in enumerate(decoder.spec.arms):
        poses = np.stack([decoder.kinematics.forward(q)[index] for q in path[1:]])
        trajectories.append(ArmTrajectory(poses=poses, gripper=gripper))
        starts.append(ArmState(pose=start.poses[index]))
    return encode_chunk(decoder.spec.action_space, trajectories, starts, decoder.spec.has_gripper)


def test_end_effector_chunks_decode_to_joints_that_reach_every_pose(decoder: ChunkDecoder) -> None:
    rng = np.random.default_rng(3)
    path = smooth_joint_path(decoder, rng)
    gripper = (np.arange(HORIZON) >= HORIZON // 2).astype(float)
    rows = chunk_rows_for(decoder, path, gripper)
    targets = decoder.joint_targets(rows, decoder.start_from_joints(path[0]), seed=path[0])
    assert targets.unreachable_rows == ()
    assert targets.positions.shape == (HORIZON, decoder.spec.state_dim)
    for step in range(HORIZON):
        reached = decoder.kinematics.forward(targets.positions[step])
        wanted = decoder.kinematics.forward(path[step + 1])
        for got, expected in zip(reached, wanted):
            assert np.linalg.norm(got[:3, 3] - expected[:3, 3]) < 1e-3
            assert rotation_angle_between(got[:3, :3], expected[:3, :3]) < 0.01
    for index, arm in enumerate(decoder.spec.arms):
        opened, closed = decoder.kinematics.gripper_positions(arm)
        column = decoder.spec.joint_names.index(arm.gripper_joint)
        np.testing.assert_array_equal(targets.positions[:, column], np.where(gripper > 0.5, closed, opened))
    lower, upper = decoder.kinematics.position_limits()
    assert np.all(targets.positions >= lower - 1e-12) and np.all(targets.positions <= upper + 1e-12)


def test_an_unreachable_row_becomes_nan_and_is_named(decoder: ChunkDecoder) -> None:
    rng = np.random.default_rng(4)
    path = smooth_joint_path(decoder, rng)
    rows = chunk_rows_for(decoder, path, np.zeros(HORIZON))
    rows[5, 0] += 5.0  # five metres along x, in the start frame: out of every arm's reach
    targets = decoder.joint_targets(rows, decoder.start_from_joints(path[0]), seed=path[0])
    assert targets.unreachable_rows == (5,)
    assert np.all(np.isnan(targets.positions[5]))
    assert np.all(np.isfinite(np.delete(targets.positions, 5, axis=0)))


@pytest.mark.parametrize("space", ["eef_relative", "eef_delta", "world_relative", "world_delta", "abs_eef",
                                   "joint_abs", "joint_relative", "joint_delta"])
def test_reexpressed_prefix_describes_the_same_absolute_motion(space: str) -> None:
    spec = dataclasses.replace(load_embodiment("so101"), action_space=space)
    decoder = ChunkDecoder(spec)
    path = smooth_joint_path(decoder, np.random.default_rng(5))
    gripper = (np.arange(HORIZON) % 3 == 0).astype(float)
    source, target = decoder.start_from_joints(path[0]), decoder.start_from_joints(path[2])
    if decoder.space.uses_poses:
        rows = chunk_rows_for(decoder, path, gripper)
    else:
        rows = encode_chunk(space, [ArmTrajectory(joints=path[1:, :5], gripper=gripper)],
                            [ArmState(joints=path[0, :5])], True)
    # the executor committed rows 2..4 of the source chunk; the new observation is at path[2]
    reexpressed = decoder.reexpress(rows[:5], 2, source, target)
    assert reexpressed.shape == (3, rows.shape[1])
    before = decoder.trajectories(rows[:5], source)[0]
    after = decoder.trajectories(reexpressed, target)[0]
    field = "poses" if decoder.space.uses_poses else "joints"
    np.testing.assert_allclose(getattr(after, field), getattr(before, field)[2:5], atol=1e-9)
    np.testing.assert_array_equal(after.gripper, before.gripper[2:5])
    if space in ("abs_eef", "joint_abs"):
        np.testing.assert_allclose(reexpressed, rows[2:5], atol=1e-9)  # absolute rows need no change
    elif space in ("eef_relative", "joint_relative"):
        assert not np.allclose(reexpressed, rows[2:5]), "a moved start must change relative rows"


def test_reexpressed_prefix_keeps_both_arms_of_a_bimanual_robot_on_their_motion() -> None:
    """ALOHA's two arms, each relative to its own chunk-start pose: re-expression must not mix
    them up (its async episodes refuse more rows than sync ones; this rules the executor out)."""
    decoder = ChunkDecoder(load_embodiment("aloha"))
    path = smooth_joint_path(decoder, np.random.default_rng(7))
    rows = chunk_rows_for(decoder, path, (np.arange(HORIZON) % 4 == 0).astype(float))
    source, target = decoder.start_from_joints(path[0]), decoder.start_from_joints(path[5])
    reexpressed = decoder.reexpress(rows, 5, source, target)
    for before, after in zip(decoder.trajectories(rows, source), decoder.trajectories(reexpressed, target),
                             strict=True):
        np.testing.assert_allclose(after.poses, before.poses[5:], atol=1e-9)
        np.testing.assert_array_equal(after.gripper, before.gripper[5:])
    targets = decoder.joint_targets(reexpressed, target, path[5])
    assert not targets.unreachable_rows
    np.testing.assert_allclose(decoder.end_effector_positions(targets.positions[-1]),
                               decoder.end_effector_positions(path[-1]), atol=2e-3)


def test_a_chunk_start_with_the_wrong_number_of_poses_is_refused() -> None:
    decoder = ChunkDecoder(load_embodiment("aloha"))
    with pytest.raises(ValueError, match="needs 2 chunk-start poses, got 1"):
        decoder.start_from_message_fields(np.zeros((1, 4, 4)), np.zeros(0))


@pytest.mark.parametrize("space", ["eef_relative", "joint_abs"])
def test_tool_poses_at_a_chunk_start_are_the_arms_forward_kinematics(space: str) -> None:
    spec = dataclasses.replace(load_embodiment("aloha"), action_space=space)
    decoder = ChunkDecoder(spec)
    joints = smooth_joint_path(decoder, np.random.default_rng(5))[0]
    start = decoder.start_from_joints(joints)
    assert len(start.poses) == (2 if space == "eef_relative" else 0)  # only pose spaces compute them
    poses = decoder.tool_poses(start)
    assert len(poses) == 2
    for pose, expected in zip(poses, decoder.kinematics.forward(joints), strict=True):
        np.testing.assert_allclose(pose, expected, atol=1e-12)


def test_rows_near_a_wrist_singularity_decode_without_swinging_the_wrist() -> None:
    """Predicted orientations are a little off; near the ViperX's wrist singularity meeting them
    exactly rolls forearm and wrist a radian apart between rows, which the executor refuses
    (`max_jump`). The decoder keeps consecutive targets close and every row reachable."""
    decoder = ChunkDecoder(load_embodiment("aloha"))
    start_joints = near_wrist_singularity(decoder.kinematics)
    start = decoder.start_from_joints(start_joints)
    rng = np.random.default_rng(5)
    trajectories = []
    for pose in start.poses:  # each arm stays put, its orientation off by up to ~0.05 rad per row
        noise = Rotation.from_rotvec(rng.normal(0, 0.03, (HORIZON, 3))).as_matrix()
        poses = np.repeat(pose[None], HORIZON, axis=0)
        poses[:, :3, :3] = poses[:, :3, :3] @ noise
        trajectories.append(ArmTrajectory(poses=poses, gripper=np.zeros(HORIZON)))
    rows = encode_chunk(decoder.spec.action_space, trajectories, [ArmState(pose=p) for p in start.poses],
                        decoder.spec.has_gripper)
    targets = decoder.joint_targets(rows, start, seed=start_joints)
    assert targets.unreachable_rows == (), f"rows {targets.unreachable_rows} out of reach for a robot standing still"
    steps = np.abs(np.diff(np.vstack([start_joints, targets.positions]), axis=0))
    assert steps.max() < 0.15, f"a step of {steps.max():.2f} rad between consecutive targets"
