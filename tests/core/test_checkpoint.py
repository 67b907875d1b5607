"""Checkpoints: bit-identical outputs after save/load, and each broken checkpoint named."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_core.checkpoint import CheckpointError
from vla_core.model.batching import Observation
from vla_core.model.builtin_encoder import MINILM_PACKAGE, minilm_version
from vla_core.model.policy import VLAPolicy
from vla_core.normalization import EmbodimentNormalizers, Normalizer

from .tiny_hf_models import BUILDERS
from .toy_policies import tiny_config, toy_embodiment, toy_policy

RNG = np.random.default_rng(0)
OBSERVATION = Observation(main_image=RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8), state=np.array([0.1, -0.2]))


def copy_of(directory: Path, tmp_path: Path, leave_out: str | None = None) -> Path:
    copy = tmp_path / "ckpt"
    copy.mkdir()
    for path in directory.iterdir():
        if path.name != leave_out:
            (copy / path.name).write_bytes(path.read_bytes())
    return copy


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
    stored = load_file(directory / "model.safetensors")
    assert not any(name.startswith("vision_language.text.model.") for name in stored)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "normalization.json", "embodiments.json"])
def test_a_missing_file_is_named(saved, tmp_path: Path, missing: str) -> None:
    _, directory = saved
    with pytest.raises(CheckpointError, match=f"checkpoint file .*{missing} is missing"):
        VLAPolicy.from_pretrained(copy_of(directory, tmp_path, leave_out=missing))


def test_a_shape_mismatch_names_the_tensor(saved, tmp_path: Path) -> None:
    _, directory = saved
    copy = copy_of(directory, tmp_path)
    weights = load_file(copy / "model.safetensors")
    weights["expert.head.weight"] = weights["expert.head.weight"][:3]
    save_file(weights, str(copy / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"tensor expert.head.weight has shape \(3, 32\), .* expects \(4, 32\)"):
        VLAPolicy.from_pretrained(copy)


def test_unknown_embodiment_and_missing_statistics_are_named(saved, tmp_path: Path) -> None:
    policy, directory = saved
    with pytest.raises(KeyError, match=r"unknown embodiment 'aloha'; this policy knows \['toy'\]"):
        policy.predict_chunk(OBSERVATION, "push", "aloha")
    copy = copy_of(directory, tmp_path)
    (copy / "normalization.json").write_text(json.dumps({}))
    with pytest.raises(CheckpointError, match=r"no statistics for embodiments \['toy'\]"):
        VLAPolicy.from_pretrained(copy)


def test_an_observation_for_another_embodiment_is_refused(saved) -> None:
    policy, _ = saved
    wrong_state = Observation(main_image=OBSERVATION.main_image, state=np.zeros(14))
    with pytest.raises(ValueError, match=r"state must have 2 values for toy \(j0, j1\), got shape \(14,\)"):
        policy.predict_chunk(wrong_state, "push", "toy")


def test_the_frozen_text_encoder_is_referenced_by_package_and_version(saved, tmp_path: Path) -> None:
    _, directory = saved
    config = json.loads((directory / "config.json").read_text())
    assert config["referenced_weights"] == {
        "vision_language.text.model.": {"package": MINILM_PACKAGE, "version": minilm_version()}}
    copy = copy_of(directory, tmp_path)
    config["referenced_weights"]["vision_language.text.model."]["version"] = "0.0.1"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"came from {MINILM_PACKAGE} 0.0.1, but {minilm_version()} is installed"):
        VLAPolicy.from_pretrained(copy)


@pytest.mark.parametrize("file, edit, message", [
    ("config.json", lambda data: data["policy"].update(hiden_size=3),
     r"config.json: unknown PolicyConfig field\(s\) \['hiden_size'\]"),
    ("config.json", lambda data: data.update(format_version=99),
     "config.json: format_version 99, this vla_core reads 1"),
    ("embodiments.json", lambda data: data["toy"].update(chunk_size=5),
     "embodiments.json: embodiment toy wants chunks of 5, the policy predicts 8"),
    ("embodiments.json", lambda data: data["toy"].update(action_space="teleport"),
     r"embodiments.json:toy: field 'action_space' must be one of"),
])
def test_a_wrong_configuration_or_embodiment_is_named(saved, tmp_path: Path, file: str, edit, message: str) -> None:
    _, directory = saved
    copy = copy_of(directory, tmp_path)
    data = json.loads((copy / file).read_text())
    edit(data)
    (copy / file).write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=message):
        VLAPolicy.from_pretrained(copy)


def test_loading_onto_a_device_and_keeping_metadata(saved, tmp_path: Path) -> None:
    policy, _ = saved
    directory = policy.save_pretrained(tmp_path / "with_metadata", metadata={"steps": 12})
    assert json.loads((directory / "config.json").read_text())["metadata"] == {"steps": 12}
    loaded = VLAPolicy.from_pretrained(directory, device="cpu")
    assert loaded.device.type == "cpu" and not loaded.training
    assert loaded.normalizers["toy"].to_dict() == policy.normalizers["toy"].to_dict()
    assert loaded.embodiments == policy.embodiments


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_frozen_hugging_face_backbone_is_referenced_by_its_directory(tmp_path: Path) -> None:
    torch.manual_seed(0)
    backbone = BUILDERS["qwen2_vl"](tmp_path / "backbone")
    policy = VLAPolicy(tiny_config(backbone=str(backbone), image_size=32), {"toy": toy_embodiment("toy")})
    directory = policy.save_pretrained(tmp_path / "policy")
    assert json.loads((directory / "config.json").read_text())["referenced_weights"] == {
        "vision_language.model.": {"directory": str(backbone)}}
    assert not any(name.startswith("vision_language.model.") for name in load_file(directory / "model.safetensors"))
    before = policy.predict_chunk(OBSERVATION, "push the block", "toy", seed=2)
    after = VLAPolicy.from_pretrained(directory).predict_chunk(OBSERVATION, "push the block", "toy", seed=2)
    np.testing.assert_array_equal(before.actions, after.actions)


def test_checkpoint_io_imports_nothing_from_the_policy() -> None:
    """Saving and loading live in vla_core.checkpoint, the policy's base class: no import cycle."""
    import subprocess
    import sys

    code = ("import sys, vla_core.checkpoint; "
            "assert 'vla_core.model.policy' not in sys.modules, 'vla_core.checkpoint imports the policy'")
    subprocess.run([sys.executable, "-c", code], check=True)
    from vla_core.checkpoint import PretrainedPolicy

    assert issubclass(VLAPolicy, PretrainedPolicy)
    assert "from_pretrained" not in vars(VLAPolicy) and "save_pretrained" not in vars(VLAPolicy)
