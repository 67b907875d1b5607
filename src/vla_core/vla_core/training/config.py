"""Every training hyper-parameter in one dataclass, read from YAML and overridable from the CLI.

`vla train --config config/train/default.yaml --set steps=2000 --set policy.hidden_size=256`:
the YAML is read into a mapping, each `--set key=value` replaces one (dotted) key with the
value parsed as YAML (so `true`, `3e-4`, `[1, 2]` and `{path: x, weight: 2}` work), and the
result is validated field by field. The config the run actually used is written into the
output directory and into every training-state directory, so a resume needs nothing else.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_core.actions import ACTION_SPACES
from vla_core.model.configuration import PolicyConfig
from vla_core.seeds import KEYPOINT_VIEWS
from vla_core.training.paraphrase import InstructionParaphraser

MIXED_PRECISION = ("auto", "bf16", "no")
STRATEGIES = ("ddp", "fsdp")


class TrainConfigError(ValueError):
    """A training setting with a bad value; the message names the key and what was expected."""


@dataclass
class DataSource:
    """One dataset of the mixture."""

    path: str  # a LeRobot v3.0 dataset directory
    weight: float = 1.0  # share of the samples drawn from this dataset (normalised over the mixture)
    prompt: str | None = None  # soft-prompt name; None = the embodiment's name (X-VLA: one per robot)
    # the representation actions are trained in; None = the one the dataset names. A dataset keeps
    # joint states and commands, so every space can be derived from it.
    action_space: str | None = None

    @classmethod
    def from_value(cls, value: Any, where: str) -> DataSource:
        if isinstance(value, str):
            value = {"path": value}
        known = [entry.name for entry in dataclasses.fields(cls)]
        if not isinstance(value, dict) or "path" not in value:
            optional = ", ".join(repr(name) for name in known[1:])
            raise TrainConfigError(f"{where} must be a path or a mapping with 'path' (and {optional}), got {value!r}")
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise TrainConfigError(f"{where} has unknown keys {unknown}; known: {', '.join(known)}")
        weight = value.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise TrainConfigError(f"{where}.weight must be a number > 0, got {weight!r}")
        prompt = value.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or not prompt or "." in prompt):
            raise TrainConfigError(f"{where}.prompt must be a non-empty name without '.', got {prompt!r}")
        action_space = value.get("action_space")
        if action_space is not None and action_space not in ACTION_SPACES:
            raise TrainConfigError(f"{where}.action_space must be one of {list(ACTION_SPACES)}, got {action_space!r}")
        return cls(str(value["path"]), float(weight), prompt, action_space)


@dataclass
class TrainConfig:
    # --- data ------------------------------------------------------------------------------
    datasets: list[DataSource] = field(default_factory=list)  # the mixture (X-VLA)
    held_out_episodes: int = 1  # per dataset, the last episodes in a seeded shuffle: validation only
    stats_max_chunks: int = 20000  # chunk starts per embodiment the normalisation statistics are fitted on
    num_workers: int = 0  # DataLoader worker processes per rank (0: load in the training process)
    # --- model -----------------------------------------------------------------------------
    init_from: str | None = None  # a policy checkpoint directory to fine-tune (None: train from scratch)
    policy: dict[str, Any] = field(default_factory=dict)  # PolicyConfig fields for a new policy
    # a checkpoint whose observation encoders (stems, text fusion, keypoints, wrist stream) a new
    # policy starts from, with its own expert and head: trained vision reused, e.g. to freeze and cache it
    encoders_from: str = ""
    # --- optimisation ----------------------------------------------------------------------
    seed: int = 0
    steps: int = 10000  # optimizer steps
    batch_size: int = 32  # global samples per optimizer step, over all processes
    micro_batch_size: int = 32  # samples per forward pass on one process (gradient accumulation fills the rest)
    learning_rate: float = 1e-4
    vision_language_lr_scale: float = 0.1  # learning-rate group of the vision-language stream
    prompt_lr_scale: float = 1.0  # learning-rate group of the soft prompts
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_steps: int = 500  # linear warm-up, then cosine decay to min_lr_ratio * learning_rate
    min_lr_ratio: float = 0.1
    grad_clip_norm: float = 1.0  # 0 = no clipping
    mixed_precision: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 on CPU; "bf16"; "no"
    # --- adaptation (X-VLA) ----------------------------------------------------------------
    prompt_warmup_steps: int = 0  # phase 1 for new embodiments: only their prompts and the action head train
    lora_rank: int = 0  # > 0: LoRA adapters instead of full fine-tuning, merged into the saved checkpoints
    lora_alpha: float = 16.0
    lora_vision_language: bool = False  # also adapt the vision-language stream's projections
    # --- augmentation -----------------------------------------------------------------------
    augment_shift: float = 0.05  # random shift (crop of a padded image), as a fraction of the image size
    augment_color: float = 0.1  # brightness, contrast and saturation factors drawn in [1 - c, 1 + c]
    # groups of equivalent instruction templates with {slots} (vla_core.training.paraphrase); [] = off
    instruction_paraphrases: list[list[str]] = field(default_factory=list)
    instruction_paraphrase_rate: float = 0.5  # chance that a matching training text is reworded
    # --- keypoint supervision (vla_core.training.keypoint_supervision) ----------------------
    keypoint_placements: int = 0  # rendered main views per simulated embodiment (0 = off); needs policy.main_keypoints
    keypoint_seed: int = KEYPOINT_VIEWS.start  # scene seed of the first rendered view (vla_core.seeds)
    keypoint_validation: int = 64  # held-out rendered views per embodiment (the seeds after the training views)
    keypoint_batch_size: int = 32  # rendered views added to every micro-batch
    keypoint_weight: float = 1.0  # weight of the keypoint loss beside the flow loss
    keypoint_pretrain_steps: int = 0  # steps that train the keypoints alone before the policy's first step
    keypoint_plan_share: float = 0.0  # share of rendered views with the arm at a row of the teleoperator's plan
    keypoint_tools: bool = False  # keypoints 1.. also learn each arm's tool (needs main_keypoints > arms)
    # --- frozen stems (vla_core.training.feature_cache) --------------------------------------
    # from this step on the conv stems are frozen and later steps read their outputs, computed
    # once per training frame, instead of the images: -1 = never. 0 freezes them before the first
    # step (after keypoint pre-training). Needs the builtin backbone; no image augmentation then.
    freeze_stems_at: int = -1
    feature_cache_dir: str = ""  # where the stem outputs are kept ("" = <output_dir>/feature_cache)
    # --- bookkeeping ------------------------------------------------------------------------
    output_dir: str = "runs/train"
    save_every: int = 1000  # checkpoint + training state every N steps (and at the end)
    val_every: int = 500  # validation every N steps (and at the end); 0 = only at the end
    val_chunks: int = 64  # held-out chunk starts scored per validation
    log_every: int = 10
    strategy: str = "ddp"  # with several processes: "ddp" (replicated) or "fsdp" (sharded, large models)

    def __post_init__(self) -> None:
        self.datasets = [d if isinstance(d, DataSource) else DataSource.from_value(d, f"datasets[{i}]")
                         for i, d in enumerate(self.datasets)]
        problems = _type_problems(self)
        if problems:
            raise TrainConfigError("invalid training config: " + "; ".join(problems))
        positive = ("steps", "batch_size", "micro_batch_size", "stats_max_chunks", "save_every", "log_every",
                    "val_chunks", "keypoint_validation", "keypoint_batch_size")
        problems = [f"{name} must be >= 1, got {getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        non_negative = ("held_out_episodes", "num_workers", "warmup_steps", "prompt_warmup_steps", "lora_rank",
                        "val_every", "grad_clip_norm", "augment_shift", "augment_color", "weight_decay",
                        "keypoint_placements", "keypoint_seed", "keypoint_weight", "keypoint_pretrain_steps")
        problems += [f"{name} must be >= 0, got {getattr(self, name)}" for name in non_negative
                     if getattr(self, name) < 0]
        if self.learning_rate <= 0 or not 0 <= self.min_lr_ratio <= 1:
            problems.append(f"learning_rate must be > 0 and min_lr_ratio in [0, 1], got {self.learning_rate} "
                            f"and {self.min_lr_ratio}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.augment_shift >= 0.5 or self.augment_color >= 1:
            problems.append(f"augment_shift must be < 0.5 and augment_color < 1, got {self.augment_shift} and "
                            f"{self.augment_color}")
        try:
            InstructionParaphraser(self.instruction_paraphrases, self.instruction_paraphrase_rate)
        except (ValueError, TypeError, KeyError) as error:
            problems.append(str(error))
        if not 0 <= self.keypoint_plan_share <= 1:
            problems.append(f"keypoint_plan_share is a probability in [0, 1], got {self.keypoint_plan_share}")
        if self.freeze_stems_at < -1:
            problems.append(f"freeze_stems_at must be a step >= 0, or -1 for never, got {self.freeze_stems_at}")
        if self.freeze_stems_at >= 0 and self.strategy == "fsdp":
            problems.append("freeze_stems_at changes which parameters train mid-run, which FSDP (strategy: fsdp) does "
                            "not support; use strategy: ddp")
        if self.mixed_precision not in MIXED_PRECISION:
            problems.append(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.init_from and self.encoders_from:
            problems.append("encoders_from starts a new policy's encoders from a checkpoint; init_from already loads a "
                            "whole policy (set one of them)")
        if self.init_from and self.policy:
            problems.append("policy settings apply to a new policy; with init_from the checkpoint's configuration "
                            f"is used (remove {sorted(self.policy)})")
        if not self.init_from:
            try:
                PolicyConfig.from_dict(dict(self.policy))
            except (ValueError, TypeError) as error:
                problems.append(f"policy: {error}")
        if problems:
            raise TrainConfigError("invalid training config: " + "; ".join(problems))

    def accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per optimizer step on each process, so the global batch is the same on any
        number of processes (hence the same training, up to float summation order)."""
        per_step = self.micro_batch_size * world_size
        if self.batch_size % per_step:
            raise TrainConfigError(f"batch_size {self.batch_size} must be a multiple of micro_batch_size "
                                   f"{self.micro_batch_size} x {world_size} processes")
        return self.batch_size // per_step

    # ---- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "training config") -> TrainConfig:
        if not isinstance(data, dict):
            raise TrainConfigError(f"{where} must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**data)

    def to_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def read_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise TrainConfigError(f"training config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise TrainConfigError(f"{path}: not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key=value` or `a.b=value` assignments; values parsed as YAML."""
    data = dict(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise TrainConfigError(f"--set {item!r}: expected key=value (for example steps=2000)")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise TrainConfigError(f"--set {item!r}: the value is not valid YAML: {error}") from error
        *parents, leaf = key.split(".")
        target = data
        for part in parents:
            child = target.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            target[part] = child
            target = child
        target[leaf] = value
    return data


def load_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    data = read_mapping(path) if path is not None else {}
    return TrainConfig.from_dict(apply_overrides(data, list(overrides)), str(path or "training config"))


def _type_problems(config: TrainConfig) -> list[str]:
    """Fields whose value has not the type of their default (ints pass as floats)."""
    problems = []
    for spec in dataclasses.fields(config):
        if spec.name in ("datasets", "init_from"):
            continue
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
        value = getattr(config, spec.name)
        expected: tuple[type, ...] = (float, int) if isinstance(default, float) else (type(default),)
        if isinstance(value, bool) and not isinstance(default, bool) or not isinstance(value, expected):
            problems.append(f"{spec.name} must be of type {type(default).__name__}, got {value!r}")
    if config.init_from is not None and not isinstance(config.init_from, str):
        problems.append(f"init_from must be a checkpoint directory or null, got {config.init_from!r}")
    return problems
