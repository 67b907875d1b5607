"""The privileged-state diagnostic (issue 32 item 4): a policy given the named cube's true pose
instead of images, trained by the same pipeline on replayed object poses and run by `vla eval`.

The policy node's refusal of such a checkpoint is tested over DDS in tests/ros/test_runtime_nodes.py.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from vla_core.backends import load_backends
from vla_core.data.episode import Episode
from vla_core.embodiment import load_embodiment
from vla_core.evaluation.policies import CheckpointPolicy
from vla_core.model.batching import Observation
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy
from vla_core.sim.factory import make_scene, make_teleop
from vla_core.sim.replay import replay_all, replay_object_poses
from vla_core.sim.rollout import plan_task, run_scripted_episode
from vla_core.sim.tasks import sample_task
from vla_core.training.config import TrainConfig
from vla_core.training.loop import train

from .training_episodes import tiny_policy_settings

SPEC = load_embodiment("so101")


@pytest.fixture(scope="module")
def scene():
    scene = make_scene("so101", "pick_cube", 64)
    yield scene
    scene.close()


def recorded_demonstration(scene, seed: int) -> tuple[Episode, np.ndarray]:
    """A scripted demonstration as `vla collect` keeps it (float32 joints, seed and target in its
    metadata, no frames needed here), and the cube poses the recording itself saw."""
    task = sample_task("pick_cube", seed, scene.colours)
    rollout = run_scripted_episode(scene, task, make_teleop(SPEC), seed)
    assert rollout.success
    episode = Episode(name=f"so101_seed{seed}", embodiment="so101", task=task.instruction("training"),
                      fps=SPEC.control_rate_hz, timestamps=rollout.timestamps,
                      state=rollout.state.astype(np.float32).astype(np.float64),
                      action=rollout.action.astype(np.float32).astype(np.float64), success=True,
                      metadata={"seed": seed, "task": "pick_cube", "target": task.colour})
    return episode, rollout.object_poses


def test_a_replay_gives_the_cube_pose_of_every_recorded_frame(scene) -> None:
    episode, seen = recorded_demonstration(scene, 3)
    poses = replay_object_poses(episode, scene, make_teleop(SPEC))
    np.testing.assert_allclose(poses, seen, atol=1e-9)
    assert poses.shape == (len(episode), 4)
    assert poses[-1, 2] > poses[0, 2] + 0.03, "the cube rises with the grasp: the pose follows it, frame by frame"

    moved = dataclasses.replace(episode, state=episode.state.copy())
    moved.state[40, 1] += 0.01  # a recording the replay does not reproduce is refused, never used
    with pytest.raises(ValueError, match=r"so101_seed3.*differ from the recorded ones by up to 0.01"):
        replay_object_poses(moved, scene, make_teleop(SPEC))
    recovery = dataclasses.replace(episode, metadata={**episode.metadata, "checkpoint": "checkpoints/default"})
    with pytest.raises(ValueError, match="recovery episode"):
        replay_object_poses(recovery, scene, make_teleop(SPEC))
    with pytest.raises(ValueError, match=r"lacks \['seed'\]"):
        replay_object_poses(dataclasses.replace(episode, metadata={"task": "pick_cube", "target": "red"}), scene,
                            make_teleop(SPEC))


def test_the_privileged_policy_reads_the_pose_and_no_image() -> None:
    with pytest.raises(ValueError, match="main_keypoints"):
        PolicyConfig(privileged_object_pose=True, main_keypoints=4)
    torch.manual_seed(0)
    policy = VLAPolicy(PolicyConfig(**tiny_policy_settings(privileged_object_pose=True)), {"so101": SPEC})
    pose = np.array([0.25, 0.05, 0.02, 0.3])
    state = np.zeros(SPEC.state_dim)
    image = np.full((32, 32, 3), 40, np.uint8)

    def chunk(observation: Observation) -> np.ndarray:
        return policy.predict_chunk(observation, "pick up the red cube", "so101", seed=7).actions

    reference = chunk(Observation(image, state, object_pose=pose))
    np.testing.assert_array_equal(chunk(Observation(255 - image, state, object_pose=pose)), reference)
    np.testing.assert_array_equal(chunk(Observation(None, state, object_pose=pose)), reference)
    assert not np.allclose(chunk(Observation(image, state, object_pose=pose + [0.05, 0, 0, 0])), reference)
    with pytest.raises(ValueError, match="needs object_pose"):
        chunk(Observation(image, state))
    with pytest.raises(ValueError, match=r"object_pose of so101 must be 4 finite values.*nan"):
        chunk(Observation(image, state, object_pose=np.array([0.2, 0.0, np.nan, 0.0])))


def test_it_trains_on_replayed_poses_without_frames_and_vla_eval_hands_it_the_true_pose(scene, tmp_path) -> None:
    episodes = [recorded_demonstration(scene, seed)[0] for seed in (0, 1, 2)]
    config = TrainConfig(datasets=[{"path": "so101"}], steps=3, batch_size=8, micro_batch_size=8, warmup_steps=1,
                         save_every=3, val_every=3, val_chunks=8, held_out_episodes=1, log_every=1,
                         policy=tiny_policy_settings(privileged_object_pose=True), output_dir=str(tmp_path))
    checkpoint = train(config, [episodes])  # the episodes carry no frames: none is decoded or needed
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "flow_loss" in r] == [1, 2, 3]
    assert np.isfinite([r["loss"] for r in records if "loss" in r]).all()
    assert any("val_l1" in r for r in records), "validation reads the held-out episode's replayed poses"

    backend = load_backends(str(checkpoint), [SPEC])["so101"]
    assert backend.requirements.object_pose
    policy = CheckpointPolicy({"so101": backend})
    scene.reset(11)
    task = sample_task("pick_cube", 11, scene.colours)
    policy.start_episode(scene, task, 11)
    observation = Observation(None, scene.joint_positions())
    fed = policy.predict_chunk(observation, "pick up the cube", "so101", seed=5).actions
    true = backend.predict_chunk(dataclasses.replace(observation, object_pose=scene.cube_pose(task.colour)),
                                 "pick up the cube", seed=5).actions
    np.testing.assert_array_equal(fed, true)
    other = backend.predict_chunk(dataclasses.replace(observation, object_pose=scene.cube_pose(task.colour) + 0.05),
                                  "pick up the cube", seed=5).actions
    assert not np.allclose(fed, other)


def test_a_consistent_teleoperator_plans_one_motion_per_placement_and_its_episodes_replay(scene) -> None:
    scene.reset(4)
    task = sample_task("pick_cube", 4, scene.colours)
    consistent, varied = make_teleop(SPEC, consistent=True), make_teleop(SPEC)
    plans = [plan_task(scene, task, teleop, np.random.default_rng(draw)) for teleop in (consistent, varied)
             for draw in (1, 2)]
    np.testing.assert_array_equal(plans[0].joints, plans[1].joints)  # nothing drawn: one motion
    assert plans[2].joints.shape != plans[3].joints.shape or not np.allclose(plans[2].joints, plans[3].joints)

    rollout = run_scripted_episode(scene, task, consistent, 4)
    episode = Episode(name="so101_consistent_seed4", embodiment="so101", task=task.instruction("training"),
                      fps=SPEC.control_rate_hz, timestamps=rollout.timestamps, state=rollout.state,
                      action=rollout.action, metadata={"seed": 4, "task": "pick_cube", "target": task.colour,
                                                       "consistent_teleoperator": True})
    np.testing.assert_allclose(replay_all([episode], SPEC)[0], rollout.object_poses, atol=1e-9)
    with pytest.raises(ValueError, match="so101_consistent_seed4"):  # replayed by the varied teleoperator
        replay_object_poses(episode, scene, varied)
