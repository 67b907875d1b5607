"""VLAPolicy: observation encoders + the action expert (flow matching or one-pass regression) +
per-embodiment data.

The module reads no files except the pretrained backbone weights that
`build_vision_language_encoder` loads from their package or local directory (a caller may inject
an encoder instead); saving and loading checkpoints is its base class's business
(vla_core.checkpoint.PretrainedPolicy). The policy owns the
embodiment registry (name -> EmbodimentSpec) and each embodiment's normalisation statistics,
so a loaded policy turns raw observations into de-normalised chunks in the embodiment's own
action space.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vla_core.checkpoint import PretrainedPolicy
from vla_core.embodiment import EmbodimentSpec
from vla_core.model.action_expert import ActionExpert, ExpertContext
from vla_core.model.batching import Observation, collate_observations, pad_last
from vla_core.model.builtin_encoder import BuiltinVisionLanguageEncoder, WristEncoder
from vla_core.model.configuration import OBJECT_POSE_FEATURES, PolicyConfig
from vla_core.model.cuda_graphs import CudaGraphRunner
from vla_core.model.flow_matching import euler_integrate, interpolate, sample_tau, target_velocity
from vla_core.model.interfaces import EncodedTokens, VisionLanguageEncoder
from vla_core.model.losses import gripper_bce_loss, masked_flow_loss, masked_l1_loss
from vla_core.normalization import EmbodimentNormalizers


@dataclass(frozen=True)
class PredictedChunk:
    """One predicted chunk in the embodiment's action space, with what is needed to execute it."""

    actions: np.ndarray  # (H, K) de-normalised
    embodiment: str
    action_space: str
    channel_names: tuple[str, ...]
    prefix_length: int  # leading rows that reproduce the committed prefix
    encode_seconds: float
    denoise_seconds: float

    @property
    def latency_seconds(self) -> float:
        return self.encode_seconds + self.denoise_seconds


def build_vision_language_encoder(config: PolicyConfig) -> VisionLanguageEncoder:
    """The configured vision-language stream; its pretrained weights are read from their package
    or local directory here, the one place the model touches files."""
    if config.backbone == "builtin":
        return BuiltinVisionLanguageEncoder(config.hidden_size, config.image_size, config.vision_width,
                                            config.num_heads, config.text_encoder_frozen, config.max_text_tokens,
                                            config.main_keypoints)
    from vla_core.model.hf_backbone import HFVisionLanguageEncoder

    return HFVisionLanguageEncoder(config.backbone, image_size=config.image_size, frozen=config.text_encoder_frozen)


class VLAPolicy(PretrainedPolicy):
    """Encoders + soft-prompted flow-matching expert + the embodiments it drives.

    `forward(batch)` returns the training losses; `sample_actions(batch)` integrates normalised
    chunks; `predict_chunk(s)` goes from raw observations to de-normalised chunks;
    `save_pretrained(directory)` and `VLAPolicy.from_pretrained(directory)` come from
    vla_core.checkpoint.PretrainedPolicy.
    """

    def __init__(self, config: PolicyConfig, embodiments: Mapping[str, EmbodimentSpec],
                 normalizers: Mapping[str, EmbodimentNormalizers] | None = None,
                 vision_language: VisionLanguageEncoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.embodiments: dict[str, EmbodimentSpec] = {}
        self.normalizers: dict[str, EmbodimentNormalizers] = {}
        self.vision_language = vision_language or build_vision_language_encoder(config)
        self.wrist = WristEncoder(config.hidden_size, config.wrist_image_size, config.vision_width,
                                  config.max_wrist_views)
        # RoboVLMs' history structure: a learned embedding per frame, added to that frame's tokens
        self.frame_embedding = nn.Parameter(
            torch.randn(config.history_length, 1, self.vision_language.output_dim) * 0.02)
        self.wrist_in = nn.Linear(config.hidden_size, self.vision_language.output_dim)
        # the diagnostic policy's only observation token: the named object's true pose
        self.object_pose_in = (nn.Sequential(nn.Linear(OBJECT_POSE_FEATURES, self.vision_language.output_dim),
                                             nn.GELU(),
                                             nn.Linear(self.vision_language.output_dim,
                                                       self.vision_language.output_dim))
                               if config.privileged_object_pose else None)
        self.expert = ActionExpert(config, self.vision_language.output_dim, prompt_names=[])
        # optimize_for_inference: what is on, and the compiled step and graphs, kept when switched off
        self._use_compile = self._use_cuda_graphs = False
        self._compiled_velocity: Callable | None = None
        self._graphs: CudaGraphRunner | None = None
        for name, spec in embodiments.items():
            stats = (normalizers or {}).get(name) or EmbodimentNormalizers.identity(spec.action_dim, spec.state_dim)
            self.add_embodiment(spec, stats)

    # ---- embodiments -----------------------------------------------------------------------
    def add_embodiment(self, spec: EmbodimentSpec, normalizers: EmbodimentNormalizers,
                       prompt_from: str | None = None) -> None:
        """Register a robot: its profile, statistics and a new soft prompt (optionally copied)."""
        if spec.action_dim > self.config.max_action_dim or spec.state_dim > self.config.max_state_dim:
            raise ValueError(f"embodiment {spec.name} has {spec.action_dim} action and {spec.state_dim} state "
                             f"channels; this policy holds at most {self.config.max_action_dim} and "
                             f"{self.config.max_state_dim}")
        if len(spec.arms) > self.config.tool_pose_arms > 0:
            raise ValueError(f"embodiment {spec.name} has {len(spec.arms)} arms; this policy reads the tool poses "
                             f"of {self.config.tool_pose_arms} (tool_pose_arms)")
        if len(spec.wrist_cameras) > self.config.max_wrist_views:
            raise ValueError(f"embodiment {spec.name} has {len(spec.wrist_cameras)} wrist cameras; this policy "
                             f"has {self.config.max_wrist_views} wrist view slots (max_wrist_views)")
        if spec.chunk_size != self.config.horizon:
            raise ValueError(f"embodiment {spec.name} wants chunks of {spec.chunk_size}, the policy predicts "
                             f"{self.config.horizon}")
        if normalizers.action.dim != spec.action_dim or normalizers.state.dim != spec.state_dim:
            raise ValueError(f"statistics for {spec.name} have {normalizers.action.dim} action and "
                             f"{normalizers.state.dim} state channels, expected {spec.action_dim} and {spec.state_dim}")
        initial = self.expert.prompts[prompt_from] if prompt_from is not None else None
        self.expert.add_prompt(spec.name, initial)
        self.embodiments[spec.name] = spec
        self.normalizers[spec.name] = normalizers

    def embodiment(self, name: str) -> EmbodimentSpec:
        try:
            return self.embodiments[name]
        except KeyError:
            raise KeyError(f"unknown embodiment {name!r}; this policy knows {sorted(self.embodiments)}") from None

    def gripper_mask(self, embodiments: Sequence[str]) -> torch.Tensor:
        """(B, K_max) bool: the binary gripper channels of each sample's embodiment.

        Only gripper channels whose normaliser passes values through qualify: their 0 / 1 values
        are what the BCE targets and the sigmoid outputs mean.
        """
        mask = torch.zeros(len(embodiments), self.config.max_action_dim, dtype=torch.bool)
        for row, name in enumerate(embodiments):
            spec, passthrough = self.embodiment(name), self.normalizers[name].action.passthrough
            mask[row, [k for k in spec.gripper_channels if passthrough[k]]] = True
        return mask.to(self.device)

    @property
    def device(self) -> torch.device:
        return self.expert.head.weight.device

    # ---- network ---------------------------------------------------------------------------
    def encode(self, batch: Mapping) -> EncodedTokens:
        """Observation tokens, computed once per chunk and reused by every Euler step.

        From the views (`main_images`, `wrist_images`), or from what the frozen stems made of
        them (`main_tokens`, `main_fine`, `wrist_tokens`: vla_core.training.feature_cache); a
        `privileged_object_pose` policy reads one token made from `object_pose` and no view."""
        if self.object_pose_in is not None:
            tokens = self.object_pose_in(batch["object_pose"].to(self.device))[:, None]
            return EncodedTokens(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=self.device))
        cached = "main_tokens" in batch
        main = batch["main_tokens" if cached else "main_images"].to(self.device)  # (B, k, ...)
        frames = []
        for k in range(main.shape[1]):
            if cached:
                encoded = self.vision_language.forward_features(main[:, k], batch["main_fine"][:, k].to(self.device),
                                                                batch["texts"])
            else:
                encoded = self.vision_language(main[:, k], batch["texts"])
            frames.append(EncodedTokens(encoded.tokens + self.frame_embedding[k], encoded.valid, encoded.keypoints))
        valid = batch["wrist_valid"].to(self.device)
        if cached:
            wrist = self.wrist.forward_patch_tokens(batch["wrist_tokens"].to(self.device), valid)
        else:
            wrist = self.wrist(batch["wrist_images"].to(self.device), valid)
        return EncodedTokens.concat([*frames, EncodedTokens(self.wrist_in(wrist.tokens), wrist.valid)])

    def stem_modules(self) -> dict[str, nn.Module]:
        """The conv stems whose outputs `encode` can read from a cache once they are frozen."""
        return {"vision_language.vision": self.vision_language.vision, "wrist.patches": self.wrist.patches}

    def forward(self, batch: Mapping, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Training losses on a batch with `actions` (B, H, K_max) normalised and `action_mask`.

        The flow head regresses the velocity at a drawn noise level ("flow_loss"); the regression
        head predicts the chunk in one pass from zero inputs ("l1_loss"). An optional `prefix_length` (B,) fixes the committed prefix; otherwise each sample draws
        one in 0..d_max (Xiaomi-Robotics-0). Prefix steps are clean inputs and carry no loss.
        """
        actions = batch["actions"].to(self.device)
        mask = batch["action_mask"].to(self.device)
        size = actions.shape[0]
        regression = self.config.head == "regression"
        if regression:  # the inputs of generated rows are zero at tau = 0: the same as inference
            noise, tau = torch.zeros_like(actions), torch.zeros(size, device=self.device)
        else:
            noise = torch.randn(actions.shape, generator=generator).to(self.device)
            tau = sample_tau(size, self.config.tau_beta, self.device, generator)
        prefix_length = batch.get("prefix_length")
        if prefix_length is None:  # leave at least one valid step to generate (episode ends are short)
            drawn = torch.randint(0, self.config.max_prefix + 1, (size,), generator=generator).to(self.device)
            prefix_length = torch.minimum(drawn, (mask.any(dim=-1).sum(dim=-1) - 1).clamp(min=0))
        prefix_length = prefix_length.to(self.device)
        is_prefix = (torch.arange(actions.shape[1], device=self.device)[None] < prefix_length[:, None])[..., None]
        inputs = torch.where(is_prefix, actions, interpolate(actions, noise, tau))
        output = self.expert(inputs, tau, batch["state"].to(self.device), prefix_length, batch["embodiments"],
                             self.encode(batch))
        counted = mask & ~is_prefix
        if regression:
            losses = {"l1_loss": masked_l1_loss(output.velocity, actions, counted)}
        else:
            losses = {"flow_loss": masked_flow_loss(output.velocity, target_velocity(actions, noise), counted)}
        losses["loss"] = next(iter(losses.values()))
        if output.gripper_logits is not None:
            gripper = counted & self.gripper_mask(batch["embodiments"])[:, None, :]
            losses["gripper_loss"] = gripper_bce_loss(output.gripper_logits, actions, gripper)
            losses["loss"] = losses["loss"] + self.config.gripper_bce_weight * losses["gripper_loss"]
        if "keypoint_images" in batch:  # left out of "loss": the trainer weighs it
            losses["keypoint_loss"] = self.keypoint_loss(batch["keypoint_images"], batch["keypoint_texts"],
                                                         batch["keypoint_targets"])
        elif "keypoint_fine" in batch:  # the same views through the frozen stem, cached
            points = self.vision_language.keypoints_from_features(batch["keypoint_fine"].to(self.device),
                                                                  batch["keypoint_texts"])
            losses["keypoint_loss"] = _per_view_sum(self.point_errors(points, batch["keypoint_targets"]))
        return losses

    def keypoint_errors(self, images: torch.Tensor, texts: Sequence[str], targets: torch.Tensor) -> torch.Tensor:
        """(B, P) squared distances (in image half-widths) of keypoints 0..P-1 of each main view
        `images` (B, 3, S, S) under its instruction `texts` (already in the text prompt) from their
        labels `targets` (B, P, 2): point 0 the named object, then the tools; NaN where unlabelled."""
        return self.point_errors(self.vision_language.keypoints(images.to(self.device), texts), targets)

    def point_errors(self, points: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`keypoint_errors` of predicted `points` (B, K, 2)."""
        targets = targets.to(self.device).float()
        if targets.shape[1] > points.shape[1]:
            raise ValueError(f"{targets.shape[1]} labelled keypoints, but the policy has {points.shape[1]} "
                             f"(PolicyConfig.main_keypoints)")
        labelled = targets.isfinite().all(dim=-1)
        # NaN labels are zeroed before the difference: a NaN there would turn every gradient NaN
        errors = (points[:, : targets.shape[1]].float() - targets.nan_to_num(0.0)).pow(2).sum(dim=-1)
        return torch.where(labelled, errors, torch.full_like(errors, math.nan))

    def keypoint_loss(self, images: torch.Tensor, texts: Sequence[str], targets: torch.Tensor) -> torch.Tensor:
        """Per view, the summed squared distances of its labelled keypoints (see `keypoint_errors`),
        averaged over the views."""
        return _per_view_sum(self.keypoint_errors(images, texts, targets))

    def sample_actions(self, batch: Mapping, prefix: torch.Tensor | None = None,
                       prefix_length: torch.Tensor | None = None, generator: torch.Generator | None = None,
                       steps: int | None = None, encoded: EncodedTokens | None = None) -> torch.Tensor:
        """Normalised chunks (B, H, K_max) by Euler integration from seeded noise.

        `prefix` (B, H, K_max) holds committed actions in its first `prefix_length` (B,) rows,
        kept fixed at every step and returned unchanged. `encoded`: observation tokens already
        computed by `encode(batch)`; otherwise they are computed here, once for all steps.
        """
        encoded = encoded if encoded is not None else self.encode(batch)
        size = len(batch["embodiments"])
        shape = (size, self.config.horizon, self.config.max_action_dim)
        noise = torch.randn(shape, generator=generator).to(self.device)
        if prefix_length is None:
            prefix_length = torch.zeros(size, dtype=torch.long)
        prefix_length = prefix_length.to(self.device)
        state = batch["state"].to(self.device)
        context = self.expert.prepare_context(encoded, prefix_length, batch["embodiments"])
        steps = steps or self.config.flow_steps
        if self._use_cuda_graphs and not torch.is_grad_enabled():
            prefix = prefix.to(self.device) if prefix is not None else torch.zeros_like(noise)
            actions, gripper_logits = self._graphs(noise, state, prefix, prefix_length, context, steps,
                                                   self._use_compile)
        else:
            prefix = prefix.to(self.device) if prefix is not None else None
            actions, gripper_logits = self._denoise(noise, state, prefix, prefix_length, context, steps,
                                                    self._use_compile)
        if gripper_logits is None:
            return actions
        # X-VLA: the gripper channels are the sigmoid of the gripper head, except on prefix rows
        generated = torch.arange(shape[1], device=self.device)[None, :, None] >= prefix_length[:, None, None]
        gripper = generated & self.gripper_mask(batch["embodiments"])[:, None, :]
        return torch.where(gripper, torch.sigmoid(gripper_logits.to(actions.dtype)), actions)

    def _denoise(self, noise: torch.Tensor, state: torch.Tensor, prefix: torch.Tensor | None,
                 prefix_length: torch.Tensor, context: ExpertContext, steps: int,
                 compiled: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The Euler loop (or the regression head's one pass): normalised actions and the last
        step's gripper logits (None without a gripper head). Every step reads the same `context`;
        this is what a CUDA graph captures."""
        velocity_of = self._compiled_velocity if compiled else self.expert.velocity
        if self.config.head == "regression":  # zero inputs at tau = 0, exactly as trained
            rows = torch.arange(noise.shape[1], device=noise.device)
            keep = (rows[None] < prefix_length[:, None])[..., None]
            inputs = torch.zeros_like(noise) if prefix is None else torch.where(keep, prefix, 0.0)
            output = velocity_of(inputs, torch.zeros(noise.shape[0], device=noise.device, dtype=noise.dtype),
                                 state, context)
            chunk = output.velocity if prefix is None else torch.where(keep, prefix, output.velocity)
            return chunk, output.gripper_logits
        last_gripper_logits: list[torch.Tensor | None] = [None]

        def velocity(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
            output = velocity_of(x, tau, state, context)
            last_gripper_logits[0] = output.gripper_logits
            return output.velocity

        return euler_integrate(velocity, noise, steps, prefix, prefix_length), last_gripper_logits[0]

    def optimize_for_inference(self, compile: bool = False, cuda_graphs: bool = False) -> VLAPolicy:
        """Inference-only speed-ups, off by default; training is unaffected.

        `compile`: the per-step velocity goes through `torch.compile` (compiled at the first
        chunk, again for a new input shape; needs a C++ compiler on a CPU). `cuda_graphs`: the
        Euler loop of a chunk is captured once per input shape and replayed (CUDA only; call
        this after moving the policy to its device). Both off restores the plain path; the
        compiled step and the captured graphs are kept, so switching back costs nothing.
        """
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"cuda_graphs needs the policy on a CUDA device, it is on {self.device}: load or move "
                             f"it to cuda first, or leave cuda_graphs off")
        if compile and self._compiled_velocity is None:
            self._compiled_velocity = torch.compile(self.expert.velocity)
        if cuda_graphs and self._graphs is None:
            self._graphs = CudaGraphRunner(self._denoise)
        self._use_compile, self._use_cuda_graphs = compile, cuda_graphs
        return self

    # ---- inference API -----------------------------------------------------------------------
    def _committed_prefixes(self, spec: EmbodimentSpec, prefixes: Sequence[np.ndarray | None],
                            ) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
        """Raw prefixes cut to d_max rows, and their normalised (B, H, K_max) tensor and lengths (B,)."""
        raw, lengths = [], torch.zeros(len(prefixes), dtype=torch.long)
        tensor = torch.zeros(len(prefixes), self.config.horizon, self.config.max_action_dim)
        for i, prefix in enumerate(prefixes):
            prefix = np.zeros((0, spec.action_dim)) if prefix is None else np.asarray(prefix, dtype=np.float64)
            if prefix.ndim != 2 or prefix.shape[1] != spec.action_dim or not np.all(np.isfinite(prefix)):
                raise ValueError(f"committed prefix {i} must be a finite (d, {spec.action_dim}) array in the action "
                                 f"space of {spec.name}, got shape {prefix.shape}")
            used = prefix[: self.config.max_prefix]
            raw.append(used)
            lengths[i] = len(used)
            if len(used):
                tensor[i, : len(used)] = pad_last(torch.from_numpy(self.normalizers[spec.name].action.normalize(used))
                                                  .float(), self.config.max_action_dim)
        return raw, tensor, lengths

    def predict_chunks(self, observations: Sequence[Observation], instructions: Sequence[str], embodiment: str,
                       prefixes: Sequence[np.ndarray | None] | None = None,
                       seed: int | None = None) -> list[PredictedChunk]:
        """De-normalised chunks for a batch of observations of one embodiment.

        `prefixes[i]`: the actions (d, K) committed while this chunk is inferred, in the
        embodiment's action space; the first min(d, d_max) are used and returned unchanged as
        the chunk's first rows (`PredictedChunk.prefix_length` says how many). `seed` makes the
        noise, hence the chunks, reproducible.
        """
        spec = self.embodiment(embodiment)
        stats = self.normalizers[embodiment]
        prefixes = list(prefixes) if prefixes is not None else [None] * len(observations)
        if len(prefixes) != len(observations):
            raise ValueError(f"{len(prefixes)} prefixes for {len(observations)} observations")
        raw_prefixes, prefix_tensor, lengths = self._committed_prefixes(spec, prefixes)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        was_training = self.training
        self.eval()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        try:
            with torch.inference_mode(), autocast:
                start = time.perf_counter()
                batch = collate_observations(self.config, spec, stats, observations, instructions)
                encoded = self.encode(batch)
                _synchronize(self.device)
                encoded_at = time.perf_counter()
                normalised = self.sample_actions(batch, prefix_tensor, lengths, generator, encoded=encoded)
                _synchronize(self.device)
                done_at = time.perf_counter()
        finally:
            self.train(was_training)
        actions = stats.action.denormalize(normalised[..., : spec.action_dim].float().cpu().numpy().astype(np.float64))
        for chunk, prefix in zip(actions, raw_prefixes):
            chunk[: len(prefix)] = prefix  # exact, even where normalisation clamps to the 1st/99th percentile
        return [
            PredictedChunk(actions[i], embodiment, spec.action_space, spec.channel_names, int(lengths[i]),
                           encoded_at - start, done_at - encoded_at)
            for i in range(len(observations))
        ]

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        """One chunk; see `predict_chunks`."""
        return self.predict_chunks([observation], [instruction], embodiment, [prefix], seed)[0]


def _per_view_sum(errors: torch.Tensor) -> torch.Tensor:
    """The keypoint loss from (B, P) errors: each view's labelled errors summed, averaged over views."""
    return errors.nansum(dim=-1).mean()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
