"""Checkpoints: bit-identical outputs after save/load, and each broken checkpoint named."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from vla_core.checkpoint import CheckpointError, load_pretrained
from vla_core.model.batching import Observation
from vla_core.model.policy import VLAPolicy
from vla_core.normalization import EmbodimentNormalizers, Normalizer

from .toy_policies import toy_embodiment, toy_policy

RNG = np.random.default_rng(0)
OBSERVATION = Observation(main_image=RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8), state=np.array([0.1, -0.2]))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[VLAPolicy, Path]:
    policy = toy_policy([toy_embodiment("toy")])
    stats = EmbodimentNormalizers(
        Normalizer.fit(RNG.normal(0, 2, (100, 2)), "quantile"), Normalizer.fit(RNG.normal(0, 1, (100, 2)), "mean_std"))
    policy.normalizers["toy"] = stats
    directory = policy.save_pretrained(tmp_path_factory.mktemp("ckpt") / "policy")
    return policy, directory


def test_save_load_gives_bit_identical_chunks_for_the_same_seed(saved) -> None:
    policy, directory = saved
    assert sorted(p.name for p in directory.iterdir()) == [
        "config.json", "embodiments.json", "model.safetensors", "normalization.json"]
    loaded = VLAPolicy.from_pretrained(directory)
    before = policy.predict_chunk(OBSERVATION, "push the block", "toy", seed=11)
    after = loaded.predict_chunk(OBSERVATION, "push the block", "toy", seed=11)
    np.testing.assert_array_equal(before.actions, after.actions)
    assert after.channel_names == ("arm/j0", "arm/j1") and after.action_space == "joint_abs"
    # the frozen, packaged text encoder is referenced, not copied into the checkpoint
    assert not any(name.startswith("vision_language.text.model.") for name in load_file(directory / "model.safetensors"))


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "normalization.json", "embodiments.json"])
def test_a_missing_file_is_named(saved, tmp_path: Path, missing: str) -> None:
    _, directory = saved
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for path in directory.iterdir():
        if path.name != missing:
            (copy / path.name).write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match=f"checkpoint file .*{missing} is missing"):
        load_pretrained(copy)


def test_a_shape_mismatch_names_the_tensor(saved, tmp_path: Path) -> None:
    _, directory = saved
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for path in directory.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    weights = load_file(copy / "model.safetensors")
    weights["expert.head.weight"] = weights["expert.head.weight"][:3]
    save_file(weights, str(copy / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"tensor expert.head.weight has shape \(3, 32\), .* expects \(4, 32\)"):
        load_pretrained(copy)


def test_unknown_embodiment_and_missing_statistics_are_named(saved, tmp_path: Path) -> None:
    policy, directory = saved
    with pytest.raises(KeyError, match=r"unknown embodiment 'aloha'; this policy knows \['toy'\]"):
        policy.predict_chunk(OBSERVATION, "push", "aloha")
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for path in directory.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "normalization.json").write_text(json.dumps({}))
    with pytest.raises(CheckpointError, match=r"no statistics for embodiments \['toy'\]"):
        load_pretrained(copy)


def test_an_observation_for_another_embodiment_is_refused(saved) -> None:
    policy, _ = saved
    wrong_state = Observation(main_image=OBSERVATION.main_image, state=np.zeros(14))
    with pytest.raises(ValueError, match=r"state must have 2 values for toy \(j0, j1\), got shape \(14,\)"):
        policy.predict_chunk(wrong_state, "push", "toy")
