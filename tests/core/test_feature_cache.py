"""Frozen-stem feature cache: the same loss as from the images, stale caches rebuilt, stems frozen."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from vla_core.embodiment import load_embodiment
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy
from vla_core.training.cached_batches import CachedSamples
from vla_core.training.config import DataSource, TrainConfig
from vla_core.training.datasets import ChunkDataset, TrainingData
from vla_core.training.feature_cache import FINGERPRINT_FILE, FeatureCache
from vla_core.training.loop import step_directory, train

from .training_episodes import synthetic_episode, tiny_policy_settings

KEYS = [(0, 0, 0), (1, 1, 5), (0, 1, 17), (1, 0, 19), (0, 0, 9)]  # (dataset, episode, frame), both robots
TOLERANCE = 2e-3  # relative: the features are stored as float16


@pytest.fixture(scope="module")
def data() -> TrainingData:
    so101 = [synthetic_episode("so101", 20, seed) for seed in range(2)]
    aloha = [synthetic_episode("aloha", 20, seed) for seed in range(2)]
    sources = [DataSource("so101"), DataSource("aloha")]
    return TrainingData.build([so101, aloha], sources, lambda name, _: load_embodiment(name), 0, 0)


def tiny_policy(data: TrainingData, seed: int = 0, **settings) -> VLAPolicy:
    torch.manual_seed(seed)
    config = PolicyConfig(**tiny_policy_settings(main_keypoints=2, gripper_bce_weight=1.0, **settings))
    return VLAPolicy(config, data.specs, data.fit_normalizers(config.horizon, 1000)).train()


def image_batch(policy: VLAPolicy, data: TrainingData) -> dict:
    dataset = ChunkDataset(policy.config, data.train, policy.normalizers)
    return ChunkDataset.collate([dataset[key] for key in KEYS])


@pytest.mark.parametrize("head", ["flow", "regression"])
def test_cached_features_give_the_loss_of_the_images(data, tmp_path, head: str) -> None:
    policy = tiny_policy(data, head=head)
    cache = FeatureCache.open_or_build(tmp_path / "cache", policy, data.train)
    cached = CachedSamples(policy.config, data.train, policy.normalizers, cache).batch(KEYS)
    images = image_batch(policy, data)
    for name in ("state", "actions", "action_mask", "wrist_valid"):
        assert torch.equal(cached[name], images[name]), name
    assert cached["texts"] == images["texts"] and cached["embodiments"] == images["embodiments"]
    assert "main_images" not in cached and cached["wrist_tokens"].shape[1] == policy.config.max_wrist_views
    from_images = policy(images, generator=torch.Generator().manual_seed(3))
    from_cache = policy(cached, generator=torch.Generator().manual_seed(3))
    for name, value in from_images.items():
        torch.testing.assert_close(from_cache[name], value, rtol=TOLERANCE, atol=1e-5, msg=name)
    # the gradients that reach the trainable parts agree as well
    policy.zero_grad()
    from_images["loss"].backward()
    expected = policy.expert.head.weight.grad.clone()
    policy.zero_grad()
    from_cache["loss"].backward()
    torch.testing.assert_close(policy.expert.head.weight.grad, expected, rtol=1e-2, atol=1e-4)


def test_a_stale_cache_is_rebuilt_never_read(data, tmp_path) -> None:
    policy = tiny_policy(data)
    directory = tmp_path / "cache"
    first = FeatureCache.open_or_build(directory, policy, data.train)
    marker = directory / "dataset_0" / FINGERPRINT_FILE
    built = marker.stat().st_mtime_ns
    assert FeatureCache.open_or_build(directory, policy, data.train) is not None
    assert marker.stat().st_mtime_ns == built, "an unchanged cache is read, not rebuilt"
    old_tokens = np.array(first.datasets[0].main_tokens[:4])

    with torch.no_grad():  # the stems change (another run, or training went on)
        policy.vision_language.vision.stem[0].weight.add_(0.05)
    changed = FeatureCache.open_or_build(directory, policy, data.train)
    assert json.loads(marker.read_text())["stems"] != "" and marker.stat().st_mtime_ns != built
    main = data.train[0][0].episode.images["front"]
    fresh = policy.vision_language.stem_features(torch.from_numpy(main[:4]).permute(0, 3, 1, 2).float() / 255)[0]
    torch.testing.assert_close(torch.from_numpy(changed.datasets[0].main_tokens[:4].astype(np.float32)), fresh,
                               rtol=TOLERANCE, atol=1e-3)
    assert not np.allclose(old_tokens, changed.datasets[0].main_tokens[:4])

    rebuilt = marker.stat().st_mtime_ns  # the frames change (a dataset re-collected under the same path)
    main[0, 0, 0] += 1
    try:
        FeatureCache.open_or_build(directory, policy, data.train)
        assert marker.stat().st_mtime_ns != rebuilt
    finally:
        main[0, 0, 0] -= 1

    marker.unlink()  # a build cut off before its fingerprint was written
    FeatureCache.open_or_build(directory, policy, data.train)
    assert marker.is_file()


def test_a_run_freezes_the_stems_and_trains_the_rest_on_cached_features(data, tmp_path) -> None:
    episodes = [[c.episode for c in dataset] for dataset in data.train]
    config = TrainConfig(datasets=[{"path": "so101"}, {"path": "aloha"}], steps=4, batch_size=4, micro_batch_size=4,
                         warmup_steps=1, save_every=2, val_every=0, held_out_episodes=0, log_every=1,
                         policy=tiny_policy_settings(head="regression"), freeze_stems_at=2, output_dir=str(tmp_path))
    train(config, episodes)
    during, after = (load_file(str(step_directory(tmp_path, step) / "training_state" / "model.safetensors"))
                     for step in (2, 4))
    stems = [name for name in during if name.startswith(("vision_language.vision.", "wrist.patches."))]
    assert stems and all(torch.equal(during[name], after[name]) for name in stems)
    assert not torch.equal(during["expert.head.weight"], after["expert.head.weight"])
    assert not torch.equal(during["vision_language.fusion.attention.q.weight"],
                           after["vision_language.fusion.attention.q.weight"])
    assert (tmp_path / "feature_cache" / "dataset_1" / FINGERPRINT_FILE).is_file()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "l1_loss" in r] == [1, 2, 3, 4]
