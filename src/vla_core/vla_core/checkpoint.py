"""Checkpoint directories: config.json + model.safetensors + normalization.json + embodiments.json.

No pickle anywhere: weights are safetensors, everything else JSON. Frozen pretrained weights are
referenced, not copied: the built-in text encoder (all-MiniLM-L6-v2, 90 MB) by its Python
package and version, a Hugging Face backbone by its local directory (`policy.backbone` in
config.json). Building the policy loads them; config.json's `referenced_weights` records where
they come from, and loading refuses a text-encoder package of another version (its weights, hence
the policy's outputs, would differ). Pretrained weights that were fine-tuned
(`text_encoder_frozen = false`) are stored with the rest.

Saving and loading live here and only here, in `PretrainedPolicy`, the base class of
`vla_core.model.policy.VLAPolicy` (as LeRobot's PreTrainedPolicy): `policy.save_pretrained(dir)`
and `VLAPolicy.from_pretrained(dir)`. This module imports nothing from the policy, so the two
form no import cycle.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vla_core import __version__
from vla_core.embodiment import EmbodimentSpec
from vla_core.model.builtin_encoder import MINILM_PACKAGE, minilm_version
from vla_core.model.configuration import PolicyConfig
from vla_core.normalization import EmbodimentNormalizers

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZATION_FILE = "normalization.json"
EMBODIMENTS_FILE = "embodiments.json"
POLICY_SET_FILE = "policies.json"  # a directory of checkpoints, one per embodiment (vla_core.policy_set)
FORMAT_VERSION = 1
PolicyT = TypeVar("PolicyT", bound="PretrainedPolicy")


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or loaded; the message names the file or tensor."""


def pretrained_prefix(config: PolicyConfig) -> str:
    """State-dict prefix of the pretrained weights the policy's vision-language encoder loads:
    MiniLM inside the built-in stream, or the whole Hugging Face VLM."""
    return "vision_language.text.model." if config.backbone == "builtin" else "vision_language.model."


def referenced_weights(config: PolicyConfig) -> dict[str, dict[str, str]]:
    """State-dict prefixes left out of model.safetensors, with where their weights come from."""
    if not config.text_encoder_frozen:
        return {}
    if config.backbone == "builtin":
        return {pretrained_prefix(config): {"package": MINILM_PACKAGE, "version": minilm_version()}}
    return {pretrained_prefix(config): {"directory": config.backbone}}


def _stored_state(policy: PretrainedPolicy) -> dict[str, torch.Tensor]:
    skipped = tuple(referenced_weights(policy.config))
    return {name: tensor.detach().contiguous().cpu() for name, tensor in policy.state_dict().items()
            if not name.startswith(skipped)}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint file {path} is not valid JSON: {error}") from error


def _read_config(path: Path) -> PolicyConfig:
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise CheckpointError(f"{path}: format_version {found!r}, this vla_core reads {FORMAT_VERSION}")
    try:
        config = PolicyConfig.from_dict(data.get("policy"))
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from error
    for prefix, source in data.get("referenced_weights", {}).items():
        if source.get("package") == MINILM_PACKAGE and source.get("version") != minilm_version():
            raise CheckpointError(f"{path}: {prefix}* came from {MINILM_PACKAGE} {source.get('version')}, but "
                                  f"{minilm_version()} is installed; install that version or retrain")
    return config


def _read_registry(directory: Path) -> tuple[dict[str, EmbodimentSpec], dict[str, EmbodimentNormalizers]]:
    embodiments_path, stats_path = directory / EMBODIMENTS_FILE, directory / NORMALIZATION_FILE
    embodiments_data, stats_data = _read_json(embodiments_path), _read_json(stats_path)
    missing = sorted(set(embodiments_data) - set(stats_data))
    if missing:
        raise CheckpointError(f"{stats_path} has no statistics for embodiments {missing}")
    try:
        embodiments = {name: EmbodimentSpec.from_dict(data, f"{embodiments_path}:{name}")
                       for name, data in embodiments_data.items()}
    except ValueError as error:
        raise CheckpointError(str(error)) from error
    try:
        normalizers = {name: EmbodimentNormalizers.from_dict(stats_data[name]) for name in embodiments}
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{stats_path}: {error}") from error
    return embodiments, normalizers


def _check_weights(path: Path, stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: tensors missing {missing[:10]}, unexpected {unexpected[:10]}")
    for name, tensor in stored.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{path}: tensor {name} has shape {tuple(tensor.shape)}, the configuration "
                                  f"expects {tuple(expected[name].shape)}")


class PretrainedPolicy(nn.Module):
    """Checkpoint saving and loading for a policy class built as
    `cls(config, embodiments, normalizers)` that keeps `config`, `embodiments` and `normalizers`."""

    config: PolicyConfig
    embodiments: dict[str, EmbodimentSpec]
    normalizers: dict[str, EmbodimentNormalizers]

    def save_pretrained(self, directory: str | Path, metadata: dict | None = None) -> Path:
        """Write the policy into `directory` (created if needed); `metadata` goes into config.json."""
        state = _stored_state(self)
        adapters = [name for name in state if "lora_" in name]
        if adapters:
            raise CheckpointError(f"the policy carries LoRA adapters ({adapters[0]}, ...): merge them into the base "
                                  "weights first with vla_core.adaptation.merge_lora, so the checkpoint loads into "
                                  "a plain policy")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(directory / CONFIG_FILE, {
            "format_version": FORMAT_VERSION, "vla_core_version": __version__, "policy": self.config.to_dict(),
            "referenced_weights": referenced_weights(self.config), "metadata": metadata or {},
        })
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
        _write_json(directory / NORMALIZATION_FILE, {name: stats.to_dict() for name, stats in self.normalizers.items()})
        _write_json(directory / EMBODIMENTS_FILE, {name: spec.to_dict() for name, spec in self.embodiments.items()})
        return directory

    @classmethod
    def from_pretrained(cls: type[PolicyT], directory: str | Path, device: str | torch.device = "cpu") -> PolicyT:
        """The policy saved in `directory`, on `device`, in eval mode."""
        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"checkpoint directory {directory} does not exist")
        if (directory / POLICY_SET_FILE).is_file():
            raise CheckpointError(f"{directory} is a policy set (one checkpoint per embodiment, {POLICY_SET_FILE}), "
                                  f"not one policy: load the member of the embodiment wanted "
                                  f"(vla_core.policy_set.member_for)")
        config = _read_config(directory / CONFIG_FILE)
        embodiments, normalizers = _read_registry(directory)
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise CheckpointError(f"checkpoint file {weights_path} is missing")
        try:
            policy = cls(config, embodiments, normalizers)
        except ValueError as error:  # an embodiment the configuration cannot drive
            raise CheckpointError(f"{directory / EMBODIMENTS_FILE}: {error}") from error
        stored = load_file(str(weights_path))
        _check_weights(weights_path, stored, _stored_state(policy))
        policy.load_state_dict(stored, strict=False)  # strict=False: referenced weights are not in the file
        return policy.to(device).eval()
