"""The training loop: a policy (new, fine-tuned from a checkpoint, or resumed) trained on a mixture.

What happens, in order: the process joins the run (vla_core.training.distributed); the policy
is built (new from `policy` settings, loaded from `init_from`, or loaded from the checkpoint
being resumed); the datasets are loaded and split; embodiments the policy does not know get
statistics fitted on their training episodes and a new soft prompt; LoRA adapters are injected
or everything (but frozen pretrained weights) is made trainable; AdamW is built over the
learning-rate groups; a resumed run restores weights, optimizer and RNG states; and then each
step accumulates the rank's micro-batches, clips, steps, and on schedule logs, validates and
saves.

Exactness: every random draw of a step (which samples, noise, flow time, committed prefix,
augmentation, dropout) comes from (seed, step, micro-batch), never from state carried between
steps, so a resumed run repeats the uninterrupted one bit for bit, and a run on N processes
equals one process accumulating the same N micro-batches, up to float summation order.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vla_core.adaptation import (
    apply_lora,
    freeze_for_prompt_warmup,
    merge_lora,
    parameter_groups,
    unfreeze_for_joint_training,
)
from vla_core.checkpoint import EMBODIMENTS_FILE, referenced_weights
from vla_core.data.episode import Episode
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.model.configuration import PolicyConfig
from vla_core.model.policy import VLAPolicy
from vla_core.training.augment import augment_batch
from vla_core.training.cached_batches import CachedSamples
from vla_core.training.config import TrainConfig, TrainConfigError
from vla_core.training.datasets import ChunkDataset, TrainingData, load_source
from vla_core.training.distributed import (
    DistributedContext,
    init_distributed,
    wrap_for_training,
)
from vla_core.training.feature_cache import FeatureCache
from vla_core.training.keypoint_supervision import KeypointSupervision
from vla_core.training.mixture import MicroBatch, MixtureSampler
from vla_core.training.paraphrase import InstructionParaphraser
from vla_core.training.report import CURVE_FILE, MetricsLog, plot_loss_curve
from vla_core.training.state import (
    gather_state,
    restore_training_state,
    save_training_state,
)
from vla_core.training.validation import validation_l1, validation_starts

POLICY_DIR, STATE_DIR, CHECKPOINTS_DIR = "policy", "training_state", "checkpoints"


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to `min_lr_ratio` at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(config.steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / span, 1.0)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def step_directory(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step:07d}"


def latest_step_directory(path: str | Path) -> Path:
    """`path` itself if it is a step directory, else the newest step directory of a run's output."""
    path = Path(path)
    if (path / STATE_DIR).is_dir():
        return path
    steps = sorted((path / CHECKPOINTS_DIR).glob("step_*")) if (path / CHECKPOINTS_DIR).is_dir() else []
    steps = [s for s in steps if (s / STATE_DIR).is_dir()]
    if not steps:
        raise FileNotFoundError(f"{path} is neither a step directory (with {STATE_DIR}/) nor a run output with "
                                f"{CHECKPOINTS_DIR}/step_*/{STATE_DIR}")
    return steps[-1]


ENCODER_PREFIXES = ("vision_language.", "wrist.", "wrist_in.", "frame_embedding")


def copy_encoders(source: VLAPolicy, target: VLAPolicy, where: str) -> None:
    """`target`'s observation encoders set to `source`'s (every parameter and buffer under
    ENCODER_PREFIXES); a tensor missing from `source` or of another shape is refused by name."""
    theirs = source.state_dict()
    mine = {name: value for name, value in target.state_dict().items() if name.startswith(ENCODER_PREFIXES)}
    problems = [f"{name}: missing" for name in mine if name not in theirs]
    problems += [f"{name}: {tuple(theirs[name].shape)} there, {tuple(value.shape)} here"
                 for name, value in mine.items() if name in theirs and theirs[name].shape != value.shape]
    if problems:
        raise TrainConfigError(f"encoders_from {where}: its encoders do not fit this policy's ("
                               + "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "") + ")")
    target.load_state_dict({name: theirs[name] for name in mine}, strict=False)


@dataclass
class Phases:
    """X-VLA's two steps: which parameters train during the prompt warm-up and afterwards."""

    warmup_steps: int
    warmup: set[str]
    joint: set[str]

    def trainable(self, step: int) -> set[str]:
        return self.warmup if step < self.warmup_steps else self.joint

    def apply(self, policy: nn.Module, step: int) -> None:
        names = self.trainable(step)
        for name, parameter in policy.named_parameters():
            parameter.requires_grad_(name in names)


class Trainer:
    """One run of `vla train` on this process; `run()` trains to `config.steps` and returns the
    last checkpoint directory."""

    def __init__(self, config: TrainConfig, datasets: Sequence[Sequence[Episode]] | None = None,
                 resume: str | Path | None = None, device: str | None = None) -> None:
        self.config = config
        self.context: DistributedContext = init_distributed(device)
        self.output = Path(config.output_dir)
        self.resume_dir = latest_step_directory(resume) if resume is not None else None
        policy = self._initial_policy()
        policy_config = policy.config if policy else PolicyConfig.from_dict(dict(config.policy))
        profiles: list[EmbodimentSpec | None] = [None] * len(config.datasets)
        if datasets is None:
            loaded = [load_source(source, policy_config) for source in config.datasets]
            datasets, profiles = [episodes for episodes, _ in loaded], [profile for _, profile in loaded]
        if len(datasets) != len(config.datasets):
            raise TrainConfigError(f"{len(datasets)} datasets given for {len(config.datasets)} sources in the config")

        def spec_for(name: str, profile: EmbodimentSpec | None) -> EmbodimentSpec:
            """The policy's profile of a known embodiment, else the dataset's, else the shipped one."""
            if policy is not None and name in policy.embodiments:
                known = policy.embodiments[name]
                if profile is not None and profile.action_space != known.action_space:
                    raise TrainConfigError(f"a dataset of {name} derives {profile.action_space} actions, but the "
                                           f"policy drives {name} in {known.action_space}")
                return known
            return profile if profile is not None else load_embodiment(name)

        self.data = TrainingData.build(datasets, config.datasets, spec_for, config.held_out_episodes, config.seed,
                                       profiles, images=not policy_config.privileged_object_pose)
        self.policy, self.new_embodiments = self._register_embodiments(policy)
        if self.policy.config.privileged_object_pose:
            if config.freeze_stems_at >= 0 or config.keypoint_placements:
                raise TrainConfigError("a privileged_object_pose policy reads no image: freeze_stems_at must be -1 "
                                       "and keypoint_placements 0")
            self.data.attach_object_poses()
        self.keypoints = KeypointSupervision(config, self.policy, self.data.specs) if config.keypoint_placements else None
        self.paraphraser = (InstructionParaphraser(config.instruction_paraphrases, config.instruction_paraphrase_rate)
                            if config.instruction_paraphrases else None)
        self.policy.to(self.context.device)
        self.referenced = tuple(referenced_weights(self.policy.config))  # left out of the saved state, as in checkpoints
        self.phases = self._phases()
        self.wrapped: nn.Module = self.policy
        if config.strategy == "fsdp" and self.context.active and config.keypoint_pretrain_steps:
            raise TrainConfigError("keypoint_pretrain_steps trains the unsharded encoder before the run, which FSDP "
                                   "(strategy: fsdp) does not allow; use strategy: ddp or pretrain in a separate run")
        if config.strategy == "fsdp" and self.context.active:
            self.wrapped = wrap_for_training(self.policy, self.context, "fsdp")
        self.optimizer = self._optimizer()
        self.start_step = 0
        if self.resume_dir is not None:
            self.start_step = restore_training_state(self.resume_dir / STATE_DIR, self.policy, self.wrapped,
                                                     self.optimizer)
        self.phases.apply(self.policy, self.start_step)
        self._wrap_replicated()
        self.sampler = MixtureSampler(self.data.episode_lengths(), self.data.weights, config.seed, config.batch_size,
                                      config.micro_batch_size, self.context.world_size, self.context.rank)
        self.accumulation = config.accumulation_steps(self.context.world_size)
        self.val_keys = validation_starts(self.data.held_out, config.val_chunks)
        cuda = self.context.device.type == "cuda"
        self.autocast = torch.autocast(self.context.device.type, dtype=torch.bfloat16,
                                       enabled=cuda and config.mixed_precision != "no")
        if config.mixed_precision == "bf16" and not cuda:
            raise TrainConfigError("mixed_precision 'bf16' needs a CUDA device; use 'auto' or 'no' on the CPU")

    # ---- set-up -------------------------------------------------------------------------------
    def _initial_policy(self) -> VLAPolicy | None:
        """The checkpoint being resumed or fine-tuned, or None for a new policy (built once the
        statistics are fitted)."""
        if self.resume_dir is not None:
            return VLAPolicy.from_pretrained(self.resume_dir / POLICY_DIR)
        if self.config.init_from:
            return VLAPolicy.from_pretrained(self.config.init_from)
        if self.config.prompt_warmup_steps:
            raise TrainConfigError("prompt_warmup_steps is X-VLA's adaptation of a pretrained policy to a new robot: "
                                   "it needs init_from (a checkpoint); a new policy trains everything from step 0")
        return None

    def _register_embodiments(self, policy: VLAPolicy | None) -> tuple[VLAPolicy, list[str]]:
        """The policy with every data source registered, and the sources new to `init_from` (their
        soft prompts are what X-VLA's warm-up trains; a resumed run's checkpoint already has them)."""
        missing = [name for name in self.data.specs if policy is None or name not in policy.embodiments]
        config = policy.config if policy is not None else PolicyConfig.from_dict(dict(self.config.policy))
        fitted = self.data.fit_normalizers(config.horizon, self.config.stats_max_chunks, missing) if missing else {}
        torch.manual_seed(self.config.seed)  # initial weights, or the new prompts' initial values
        if policy is None:
            policy = VLAPolicy(config, self.data.specs, fitted)
            if self.config.encoders_from:
                copy_encoders(VLAPolicy.from_pretrained(self.config.encoders_from), policy, self.config.encoders_from)
        else:
            for name in missing:
                policy.add_embodiment(self.data.specs[name], fitted[name])
        known = set()
        if self.config.init_from:
            known = set(json.loads((Path(self.config.init_from) / EMBODIMENTS_FILE).read_text()))
        return policy.train(), [name for name in self.data.specs if name not in known]

    def _phases(self) -> Phases:
        config, policy = self.config, self.policy
        if config.lora_rank:
            apply_lora(policy, config.lora_rank, config.lora_alpha, include_vision_language=config.lora_vision_language)
        else:
            unfreeze_for_joint_training(policy)
        joint = {name for name, p in policy.named_parameters() if p.requires_grad}
        warmup_steps = config.prompt_warmup_steps if self.new_embodiments else 0
        warmup: set[str] = set()
        if warmup_steps:
            if config.strategy == "fsdp" and self.context.active:
                raise TrainConfigError("prompt_warmup_steps changes which parameters train mid-run, which FSDP "
                                       "(strategy: fsdp) does not support; use strategy: ddp")
            for name in self.new_embodiments:
                warmup |= set(freeze_for_prompt_warmup(policy, name))
            warmup &= joint | {f"expert.prompts.{name}" for name in self.new_embodiments}
        return Phases(warmup_steps, warmup, joint)

    def _optimizer(self) -> torch.optim.AdamW:
        self.phases.apply(self.policy, self.phases.warmup_steps)  # build over every parameter that will train
        config = self.config
        groups = parameter_groups(self.policy, config.learning_rate, config.vision_language_lr_scale,
                                  config.prompt_lr_scale, config.weight_decay)
        for group in groups:
            group["base_lr"] = group["lr"]
        return torch.optim.AdamW(groups, lr=config.learning_rate, betas=tuple(config.betas),
                                 weight_decay=config.weight_decay)

    def _wrap_replicated(self) -> None:
        """(Re)build DDP around the policy: it fixes the trainable set when built."""
        if self.config.strategy == "ddp" and self.context.active:
            self.wrapped = wrap_for_training(self.policy, self.context, "ddp")

    # ---- the loop -----------------------------------------------------------------------------
    def micro_batches(self) -> Iterator[tuple[dict, MicroBatch]]:
        config = self.config
        if self.policy.config.privileged_object_pose:  # no view to decode: every batch is a gather over tables
            samples = CachedSamples(self.policy.config, self.data.train, self.policy.normalizers, None)
            return ((samples.batch(micro.keys), micro) for micro in self.sampler.iterate(self.start_step, config.steps))
        dataset = ChunkDataset(self.policy.config, self.data.train, self.policy.normalizers)
        keys = (micro.keys for micro in self.sampler.iterate(self.start_step, config.steps))
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=keys, collate_fn=ChunkDataset.collate,
                                             num_workers=config.num_workers,
                                             pin_memory=self.context.device.type == "cuda")
        return zip(loader, self.sampler.iterate(self.start_step, config.steps))  # the same plan, lazily, twice

    def frozen_stem_batches(self, step: int) -> Iterator[tuple[dict, MicroBatch]]:
        """Freeze the conv stems from `step` on and return the batches of the remaining steps, read
        from their cached outputs (vla_core.training.feature_cache)."""
        policy, config = self.policy, self.config
        if policy.config.backbone != "builtin":
            raise TrainConfigError(f"freeze_stems_at caches the builtin backbone's conv stems; this policy's backbone "
                                   f"is {policy.config.backbone!r} (set freeze_stems_at: -1)")
        stems = {f"{prefix}.{name}" for prefix, module in policy.stem_modules().items()
                 for name, _ in module.named_parameters()}
        self.phases.warmup -= stems
        self.phases.joint -= stems
        self.phases.apply(policy, step)
        self._wrap_replicated()
        directory = Path(config.feature_cache_dir) if config.feature_cache_dir else self.output / "feature_cache"
        if not self.context.is_main:  # the main process builds the cache; the others read it
            self.context.barrier()
        cache = FeatureCache.open_or_build(directory, policy, self.data.train)
        if self.context.is_main:
            self.context.barrier()
        if self.keypoints is not None:
            self.keypoints.cache_stem_features(policy)
        samples = CachedSamples(policy.config, self.data.train, policy.normalizers, cache)
        return ((samples.batch(micro.keys), micro) for micro in self.sampler.iterate(step, config.steps))

    def train_step(self, step: int, micro_batches: Iterator[tuple[dict, MicroBatch]]) -> dict[str, float]:
        config = self.config
        factor = learning_rate_factor(step, config)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for index in range(self.accumulation):
            batch, micro = next(micro_batches)
            generator = torch.Generator().manual_seed(micro.seed)
            if "main_images" in batch:  # cached stem features are those of the unaugmented frames
                batch = augment_batch(batch, generator, config.augment_shift, config.augment_color)
            if self.paraphraser is not None:
                batch = self.paraphraser.apply(batch, generator)
            if self.keypoints is not None:
                batch = self.keypoints.add_to(batch, generator)
            torch.manual_seed(micro.seed)  # dropout, if configured
            last = index == self.accumulation - 1
            sync = self.wrapped.no_sync() if self.context.active and not last else contextlib.nullcontext()
            with sync:
                with self.autocast:
                    losses = self.wrapped(batch, generator=generator)
                total = losses["loss"]
                if "keypoint_loss" in losses:
                    total = total + config.keypoint_weight * losses["keypoint_loss"]
                (total / self.accumulation).backward()
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + float(value.detach()) / self.accumulation
        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        limit = config.grad_clip_norm or math.inf
        if hasattr(self.wrapped, "clip_grad_norm_"):  # FSDP: the norm over all shards
            norm = self.wrapped.clip_grad_norm_(limit)
        else:
            norm = torch.nn.utils.clip_grad_norm_(trainable, limit)
        self.optimizer.step()
        return {**totals, "grad_norm": float(norm), "lr": config.learning_rate * factor}

    def _full_parameters(self, writeback: bool = False):
        """Full parameters on every rank for validation and saving (FSDP gathers; otherwise a no-op)."""
        if hasattr(self.wrapped, "summon_full_params"):
            return self.wrapped.summon_full_params(self.wrapped, writeback=writeback)
        return contextlib.nullcontext()

    def validate(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        with self._full_parameters():
            if self.val_keys:
                scores.update(validation_l1(self.policy, self.policy.config, self.data.held_out,
                                            self.policy.normalizers, self.val_keys, self.context, self.config.seed,
                                            self.config.micro_batch_size, self.autocast))
            if self.keypoints is not None:
                scores.update(self.keypoints.score(self.policy))
        return scores

    def save(self, step: int) -> Path:
        """Policy checkpoint (LoRA merged) and training state under checkpoints/step_N; rank 0 writes."""
        directory = step_directory(self.output, step)
        model, optimizer = gather_state(self.policy, self.wrapped, self.optimizer, self.referenced)
        with self._full_parameters():
            if self.context.is_main:
                deployable = self.policy
                if self.config.lora_rank:
                    deployable = copy.deepcopy(self.policy)
                    merge_lora(deployable)
                deployable.save_pretrained(directory / POLICY_DIR, {
                    "kind": "trained", "step": step, "train_config": self.config.to_dict()})
                save_training_state(directory / STATE_DIR, model, optimizer, step, self.context.world_size,
                                    self.config.to_dict())
        self.context.barrier()
        return directory

    def run(self) -> Path:
        from tqdm import tqdm

        config, context = self.config, self.context
        log = MetricsLog(self.output, self.start_step) if context.is_main else None
        if context.is_main:
            config.to_yaml(self.output / "train_config.yaml")
        micro_batches = self.micro_batches()
        progress = tqdm(total=config.steps, initial=self.start_step, disable=not context.is_main, unit="step",
                        dynamic_ncols=True)
        last_dir = step_directory(self.output, self.start_step)
        if self.keypoints is not None and self.start_step == 0 and config.keypoint_pretrain_steps:
            self.keypoints.pretrain(self.policy, log.write if log else None)
            if log:
                log.write({"step": 0, **self.keypoints.score(self.policy)})
        started, window = time.perf_counter(), 0
        self.policy.train()
        stems_frozen = False
        for step in range(self.start_step, config.steps):
            if not stems_frozen and 0 <= config.freeze_stems_at <= step:
                micro_batches, stems_frozen = self.frozen_stem_batches(step), True
                started = time.perf_counter()
            if step == self.phases.warmup_steps and step > 0 and self.phases.warmup:
                self.phases.apply(self.policy, step)  # X-VLA step two: train jointly
                self._wrap_replicated()
            metrics = self.train_step(step, micro_batches)
            done, window = step + 1, window + 1
            progress.update(1)
            final = done == config.steps
            if done % config.log_every == 0 or final:
                reduced = context.all_reduce_sum(torch.tensor([metrics["loss"]], dtype=torch.float64))
                elapsed = time.perf_counter() - started
                record = {"step": done, **metrics, "loss": float(reduced[0]) / context.world_size,
                          "phase": "prompt_warmup" if step < self.phases.warmup_steps else "joint",
                          "samples_per_second": window * config.batch_size / elapsed}
                started, window = time.perf_counter(), 0
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{metrics['lr']:.2e}")
                if log:
                    log.write(record)
            if (config.val_every and done % config.val_every == 0) or final:
                scores = self.validate()
                if scores and log:
                    log.write({"step": done, **scores})
                    progress.write(f"step {done}: " + ", ".join(f"{key} {value:.4f}" for key, value in scores.items()))
            if done % config.save_every == 0 or final:
                last_dir = self.save(done)
            if window == 0:  # throughput counts training steps only, not validation or saving
                started = time.perf_counter()
        progress.close()
        if log:
            plot_loss_curve(log.records(), self.output / CURVE_FILE)
        return last_dir / POLICY_DIR


def train(config: TrainConfig, datasets: Sequence[Sequence[Episode]] | None = None,
          resume: str | Path | None = None, device: str | None = None) -> Path:
    """Train as configured; returns the final policy checkpoint directory."""
    return Trainer(config, datasets, resume, device).run()
