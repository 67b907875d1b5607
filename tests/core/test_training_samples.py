"""Training samples: chunks encoded as the runtime decodes them, statistics, mixture draws,
augmentation and the training config."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from vla_core.embodiment import load_embodiment
from vla_core.kinematics import RobotKinematics
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy
from vla_core.runtime.decoding import ChunkDecoder
from vla_core.training.augment import augment_batch
from vla_core.training.config import (
    TrainConfig,
    TrainConfigError,
    apply_overrides,
    load_train_config,
)
from vla_core.training.mixture import MixtureSampler
from vla_core.training.samples import (
    EpisodeChunks,
    fit_normalizers,
    merge_batches,
    sample_batch,
)

from .training_episodes import synthetic_episode, tiny_policy_settings


@pytest.fixture(scope="module")
def so101():
    spec = load_embodiment("so101")
    kinematics = RobotKinematics(spec)
    episodes = [synthetic_episode("so101", 30, seed) for seed in range(2)]
    return spec, kinematics, [EpisodeChunks.build(e, spec, kinematics) for e in episodes]


def test_chunks_decode_back_to_the_recorded_joint_targets(so101) -> None:
    spec, kinematics, (chunks, _) = so101
    decoder = ChunkDecoder(spec, kinematics)
    episode, start = chunks.episode, 5
    rows, valid = chunks.chunk(start, 16)
    assert rows.shape == (16, spec.action_dim) and valid.all()
    (trajectory,) = decoder.trajectories(rows, decoder.start_from_joints(episode.state[start]))
    for h in range(16):  # eef_relative rows are the FK of the targets, relative to the chunk start's FK
        np.testing.assert_allclose(trajectory.poses[h], kinematics.forward(episode.action[start + h])[0], atol=1e-9)
    targets = decoder.joint_targets(rows, decoder.start_from_joints(episode.state[start]), episode.state[start])
    gripper = spec.joint_names.index("gripper")  # the decoder maps the binary channel back to the target
    np.testing.assert_allclose(targets.positions[:, gripper], episode.action[start:start + 16, gripper])
    _, closed = kinematics.gripper_positions(spec.arms[0])
    shut = np.isclose(episode.action[start:start + 16, gripper], closed)
    assert 0 < shut.sum() < 16, "the chunk must hold open and closed rows, or the binary channel is not tested"
    np.testing.assert_array_equal(rows[:, -1], shut.astype(float))  # 1 = closed, 0 = open, row by row


def test_chunks_past_the_episode_end_are_masked(so101) -> None:
    _, _, (chunks, _) = so101
    rows, valid = chunks.chunk(len(chunks) - 3, 16)
    assert valid.tolist() == [True] * 3 + [False] * 13
    assert np.all(np.isfinite(rows))
    with pytest.raises(IndexError, match="no chunk starts at 30"):
        chunks.chunk(30, 16)


def test_statistics_are_quantiles_with_grippers_passed_through(so101) -> None:
    _, _, chunks = so101
    stats = fit_normalizers(chunks, 16, max_chunks=1000)
    assert stats.action.kind == "quantile" and stats.action.passthrough.tolist() == [False] * 9 + [True]
    rows = np.concatenate([c.chunk(t, 16)[0] for c in chunks for t in range(len(c))])
    normalised = stats.action.normalize(rows)
    assert normalised[:, :9].min() >= -1 and normalised[:, :9].max() <= 1
    assert np.mean(np.abs(normalised[:, :9]) < 0.999) > 0.9  # most values inside the 1st..99th percentile
    assert set(np.unique(rows[:, 9])) == {0.0, 1.0}  # both gripper values, so the pass-through is tested
    np.testing.assert_array_equal(normalised[:, 9], rows[:, 9])


def test_samples_of_two_robots_form_one_batch_the_policy_trains_on() -> None:
    specs = {name: load_embodiment(name) for name in ("so101", "aloha")}
    chunks = {name: EpisodeChunks.build(synthetic_episode(name, 20, 1), spec, RobotKinematics(spec))
              for name, spec in specs.items()}
    stats = {name: fit_normalizers([c], 16, 100) for name, c in chunks.items()}
    config = PolicyConfig(**tiny_policy_settings())
    batch = merge_batches([sample_batch(config, chunks["so101"], 18, stats["so101"]),
                           sample_batch(config, chunks["aloha"], 0, stats["aloha"])])
    assert batch["embodiments"] == ["so101", "aloha"]
    assert batch["actions"].shape == (2, 16, 20) and batch["main_images"].shape == (2, 1, 3, 16, 16)
    assert batch["action_mask"][0].sum() == 2 * 10  # SO-101: 10 channels, 2 frames left in its episode
    assert batch["action_mask"][1].sum() == 16 * 20 and batch["wrist_valid"].tolist() == [[True, False], [True, True]]
    assert "pick up the cube" in batch["texts"][0] and "ALOHA" in batch["texts"][1]
    torch.manual_seed(0)
    policy = VLAPolicy(config, specs, stats)
    losses = policy(batch, generator=torch.Generator().manual_seed(0))
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and policy.expert.head.weight.grad.abs().sum() > 0


def test_tool_poses_follow_the_joints_into_the_state_of_both_robots() -> None:
    specs = {name: load_embodiment(name) for name in ("so101", "aloha")}
    kinematics = {name: RobotKinematics(spec) for name, spec in specs.items()}
    chunks = {name: EpisodeChunks.build(synthetic_episode(name, 20, 2), spec, kinematics[name])
              for name, spec in specs.items()}
    stats = {name: fit_normalizers([c], 16, 100) for name, c in chunks.items()}
    config = PolicyConfig(**tiny_policy_settings(tool_pose_arms=2))
    batch = merge_batches([sample_batch(config, chunks["so101"], 7, stats["so101"]),
                           sample_batch(config, chunks["aloha"], 11, stats["aloha"])])
    assert batch["state"].shape == (2, 14 + 18)
    for row, (name, frame) in enumerate((("so101", 7), ("aloha", 11))):
        poses = kinematics[name].forward(chunks[name].episode.state[frame])
        for arm, pose in enumerate(poses):  # arm slot: position (m), then the rotation's first two columns
            features = batch["state"][row, 14 + 9 * arm: 14 + 9 * (arm + 1)].double().numpy()
            np.testing.assert_allclose(features[:3], pose[:3, 3], atol=1e-6)
            np.testing.assert_allclose(features[3:], np.concatenate([pose[:3, 0], pose[:3, 1]]), atol=1e-6)
    assert batch["state"][0, 14 + 9:].abs().sum() == 0  # the SO-101 has one arm: the second slot is empty
    torch.manual_seed(0)
    policy = VLAPolicy(config, specs, stats)
    policy(batch, generator=torch.Generator().manual_seed(0))["loss"].backward()
    pose_columns = policy.expert.step_in.weight.grad[:, 14:14 + 18]
    assert pose_columns.abs().sum() > 0  # the expert reads the poses


def test_a_policy_reading_tool_poses_refuses_observations_without_them() -> None:
    spec = load_embodiment("aloha")
    chunks = EpisodeChunks.build(synthetic_episode("aloha", 20, 3), spec, RobotKinematics(spec))
    config = PolicyConfig(**tiny_policy_settings(tool_pose_arms=2))
    policy = VLAPolicy(config, {"aloha": spec}, {"aloha": fit_normalizers([chunks], 16, 100)})
    observation = dataclasses.replace(chunks.observation(4), tool_poses=chunks.observation(4).tool_poses[:1])
    with pytest.raises(ValueError, match="aloha has 2 arm\\(s\\), the observation has 1 tool pose"):
        policy.predict_chunk(observation, "pick up the cube", "aloha")
    broken = [np.full((4, 4), np.nan)] * 2
    with pytest.raises(ValueError, match="tool pose of aloha arm 'left' must be a finite"):
        policy.predict_chunk(dataclasses.replace(observation, tool_poses=broken), "pick up the cube", "aloha")
    chunk = policy.predict_chunk(chunks.observation(4), "pick up the cube", "aloha")
    assert chunk.actions.shape == (16, spec.action_dim) and np.all(np.isfinite(chunk.actions))
    with pytest.raises(ValueError, match="aloha has 2 arms; this policy reads the tool poses of 1"):
        VLAPolicy(PolicyConfig(**tiny_policy_settings(tool_pose_arms=1)), {"aloha": spec})


def test_joint_velocity_is_the_recorded_states_backward_difference_read_beside_the_joints() -> None:
    spec = load_embodiment("aloha")
    chunks = EpisodeChunks.build(synthetic_episode("aloha", 20, 4), spec, RobotKinematics(spec))
    states, fps = chunks.episode.state, chunks.episode.fps
    np.testing.assert_allclose(chunks.observation(9).joint_velocity, (states[9] - states[8]) * fps)
    np.testing.assert_array_equal(chunks.observation(0).joint_velocity, 0.0)  # at rest before the first frame
    stats = fit_normalizers([chunks], 16, 100)
    config = PolicyConfig(**tiny_policy_settings(state_velocity=True))
    batch = sample_batch(config, chunks, 9, stats)
    assert batch["state"].shape == (1, 14 + 14)
    # the velocity in normalised state units per second: a joint's velocity on its position's scale
    position_units = stats.state.normalize(states[9]) - stats.state.normalize(states[8])
    inside = np.all(np.abs(stats.state.normalize(states[8:10])) < 1, axis=0)  # unclipped at both frames
    assert inside.sum() >= 4
    velocity = batch["state"][0, 14:14 + spec.state_dim].double().numpy()
    np.testing.assert_allclose(velocity[inside], position_units[inside] * fps, rtol=1e-4, atol=1e-4)
    assert batch["state"][0, 14:28].abs().max() > 0.1  # the synthetic joints move
    torch.manual_seed(0)
    policy = VLAPolicy(config, {"aloha": spec}, {"aloha": stats})
    policy(batch, generator=torch.Generator().manual_seed(0))["loss"].backward()
    assert policy.expert.step_in.weight.grad[:, 14:28].abs().sum() > 0  # the expert reads the velocity


def test_a_policy_reading_joint_velocity_refuses_observations_without_it() -> None:
    spec = load_embodiment("so101")
    chunks = EpisodeChunks.build(synthetic_episode("so101", 20, 5), spec, RobotKinematics(spec))
    policy = VLAPolicy(PolicyConfig(**tiny_policy_settings(state_velocity=True)), {"so101": spec},
                       {"so101": fit_normalizers([chunks], 16, 100)})
    observation = chunks.observation(6)
    with pytest.raises(ValueError, match="reads the joints' velocity .* so101 needs joint_velocity, 6 values"):
        policy.predict_chunk(dataclasses.replace(observation, joint_velocity=None), "pick up the cube", "so101")
    with pytest.raises(ValueError, match="joint_velocity of so101 must be 6 finite values"):
        policy.predict_chunk(dataclasses.replace(observation, joint_velocity=np.full(6, np.inf)),
                             "pick up the cube", "so101")
    still, moving = (policy.predict_chunk(dataclasses.replace(observation, joint_velocity=v), "pick up the cube",
                                          "so101", seed=1).actions for v in (np.zeros(6), np.full(6, 2.0)))
    assert np.abs(still - moving).max() > 1e-4  # the same frame, a different motion: a different chunk


def test_mixture_follows_weights_and_treats_trajectories_equally() -> None:
    # dataset 0: one long and one short episode; dataset 1: one episode; weights 3 : 1
    sampler = MixtureSampler([[1000, 10], [50]], [3.0, 1.0], seed=7, batch_size=4000, micro_batch_size=4000)
    keys = np.array(sampler.global_batch(0))
    share = np.mean(keys[:, 0] == 0)
    assert abs(share - 0.75) < 0.03
    first = keys[keys[:, 0] == 0]
    assert abs(np.mean(first[:, 1] == 1) - 0.5) < 0.04  # the 10-frame episode as often as the 1000-frame one
    assert first[first[:, 1] == 1][:, 2].max() < 10


def test_mixture_is_a_function_of_seed_and_step_and_ranks_partition_it() -> None:
    lengths, weights = [[30, 40], [20]], [1.0, 2.0]
    single = MixtureSampler(lengths, weights, seed=1, batch_size=8, micro_batch_size=2)
    assert single.global_batch(5) == MixtureSampler(lengths, weights, 1, 8, 2).global_batch(5)
    assert single.global_batch(5) != single.global_batch(6)
    assert single.global_batch(5) != MixtureSampler(lengths, weights, 2, 8, 2).global_batch(5)
    ranks = [MixtureSampler(lengths, weights, 1, 8, 2, world_size=2, rank=r).micro_batches(5) for r in range(2)]
    merged = sorted([m for rank in ranks for m in rank], key=lambda m: m.index)
    assert merged == single.micro_batches(5)  # same micro-batches, same seeds, split over the ranks
    assert [m.index for m in ranks[1]] == [1, 3]
    with pytest.raises(ValueError, match="not a multiple"):
        MixtureSampler(lengths, weights, 1, batch_size=6, micro_batch_size=2, world_size=2)


def test_augmentation_is_seeded_and_keeps_images_valid(so101) -> None:
    _, _, (chunks, _) = so101
    config = PolicyConfig(**tiny_policy_settings())
    stats = fit_normalizers([chunks], 16, 100)
    batch = merge_batches([sample_batch(config, chunks, t, stats) for t in (0, 10)])

    def run(seed: int) -> dict:
        return augment_batch(batch, torch.Generator().manual_seed(seed), shift=0.1, color=0.2)

    same, again, other = run(3), run(3), run(4)
    assert torch.equal(same["main_images"], again["main_images"])
    assert not torch.equal(same["main_images"], other["main_images"])
    assert not torch.equal(same["main_images"], batch["main_images"])
    for key in ("main_images", "wrist_images"):
        assert same[key].shape == batch[key].shape and same[key].min() >= 0 and same[key].max() <= 1
    assert torch.equal(same["actions"], batch["actions"])


def test_config_reads_yaml_and_takes_dotted_overrides(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    TrainConfig(datasets=[{"path": "a", "weight": 2}], policy={"hidden_size": 64}).to_yaml(path)
    config = load_train_config(path, ["steps=7", "policy.depth=2", "datasets=[{path: b, prompt: lab_b}]",
                                      "betas=[0.8, 0.9]"])
    assert config.steps == 7 and config.policy == {"hidden_size": 64, "depth": 2} and config.betas == [0.8, 0.9]
    assert config.datasets[0].path == "b" and config.datasets[0].prompt == "lab_b"
    assert TrainConfig.from_dict(dataclasses.asdict(config)) == config
    assert load_train_config("config/train/default.yaml").steps > 0
    assert load_train_config("config/train/finetune_new_robot.yaml").lora_rank > 0


def test_a_source_trains_in_its_own_action_space_else_the_datasets(tmp_path) -> None:
    from vla_core.data.lerobot_v3 import DatasetWriter
    from vla_core.training.config import DataSource
    from vla_core.training.datasets import load_source

    with DatasetWriter(tmp_path / "pick", load_embodiment("so101"), 30.0, action_space="eef_delta") as writer:
        writer.add(synthetic_episode("so101", 8, 0))
    assert load_source(DataSource(str(tmp_path / "pick")))[1].action_space == "eef_delta"
    source = DataSource.from_value({"path": str(tmp_path / "pick"), "action_space": "joint_relative"}, "datasets[0]")
    assert load_source(source)[1].action_space == "joint_relative"


@pytest.mark.parametrize("overrides, message", [
    (["stepz=3"], "unknown key.*stepz"),
    (["steps=0"], "steps must be >= 1"),
    (["learning_rate=fast"], "learning_rate must be of type float"),
    (["policy.hidden_size=33"], "policy: .*divisible"),
    (["datasets=[{path: a, weight: -1}]"], r"datasets\[0\].weight must be a number > 0"),
    (["datasets=[{path: a, action_space: polar}]"], r"datasets\[0\].action_space must be one of \['eef_relative'"),
    (["mixed_precision=fp8"], "mixed_precision must be one of"),
    (["steps"], "expected key=value"),
])
def test_bad_settings_are_refused_by_name(overrides, message) -> None:
    with pytest.raises(TrainConfigError, match=message):
        load_train_config(None, overrides)
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}
