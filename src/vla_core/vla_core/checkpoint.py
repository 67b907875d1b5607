"""Checkpoint directories: config.json + model.safetensors + normalization.json + embodiments.json.

No pickle anywhere: weights are safetensors, everything else JSON. The frozen, pretrained text
encoder (all-MiniLM-L6-v2, 90 MB) is not copied into each checkpoint: it is referenced by its
package, which `config.json` names; a fine-tuned text encoder (text_encoder_frozen = false) is
stored with the rest.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_core import __version__
from vla_core.embodiment import EmbodimentSpec
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy
from vla_core.normalization import EmbodimentNormalizers

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZATION_FILE = "normalization.json"
EMBODIMENTS_FILE = "embodiments.json"
FORMAT_VERSION = 1
_PACKAGED_TEXT_ENCODER = "vision_language.text.model."


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message names the file or tensor."""


def _stored_state(policy: VLAPolicy) -> dict[str, torch.Tensor]:
    state = policy.state_dict()
    if policy.config.text_encoder_frozen:
        state = {k: v for k, v in state.items() if not k.startswith(_PACKAGED_TEXT_ENCODER)}
    return {k: v.detach().contiguous().cpu() for k, v in state.items()}


def save_pretrained(policy: VLAPolicy, directory: str | Path, metadata: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format_version": FORMAT_VERSION, "vla_core_version": __version__, "policy": policy.config.to_dict(),
              "metadata": metadata or {}}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    save_file(_stored_state(policy), str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    (directory / NORMALIZATION_FILE).write_text(
        json.dumps({name: stats.to_dict() for name, stats in policy.normalizers.items()}, indent=2) + "\n")
    (directory / EMBODIMENTS_FILE).write_text(
        json.dumps({name: spec.to_dict() for name, spec in policy.embodiments.items()}, indent=2) + "\n")
    return directory


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint file {path} is not valid JSON: {error}") from error


def load_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> VLAPolicy:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    config_data = _read_json(directory / CONFIG_FILE)
    if config_data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{directory / CONFIG_FILE}: format_version {config_data.get('format_version')!r}, "
                              f"this vla_core reads {FORMAT_VERSION}")
    config = PolicyConfig.from_dict(config_data["policy"])
    embodiments = {name: EmbodimentSpec.from_dict(data, f"{directory / EMBODIMENTS_FILE}:{name}")
                   for name, data in _read_json(directory / EMBODIMENTS_FILE).items()}
    stats_data = _read_json(directory / NORMALIZATION_FILE)
    missing = sorted(set(embodiments) - set(stats_data))
    if missing:
        raise CheckpointError(f"{directory / NORMALIZATION_FILE} has no statistics for embodiments {missing}")
    normalizers = {name: EmbodimentNormalizers.from_dict(stats_data[name]) for name in embodiments}
    policy = VLAPolicy(config, embodiments, normalizers)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint file {weights_path} is missing")
    stored = load_file(str(weights_path))
    expected = _stored_state(policy)
    missing_tensors = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing_tensors or unexpected:
        raise CheckpointError(f"{weights_path}: tensors missing {missing_tensors[:10]}, unexpected {unexpected[:10]}")
    for name, tensor in stored.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{weights_path}: tensor {name} has shape {tuple(tensor.shape)}, the "
                                  f"configuration expects {tuple(expected[name].shape)}")
    policy.load_state_dict(stored, strict=False)
    return policy.to(device).eval()

