"""VLAPolicy: observation encoders + the flow-matching action expert + per-embodiment data.

The module holds no file or network I/O (see vla_core.checkpoint for that). It owns the
embodiment registry (name -> EmbodimentSpec) and each embodiment's normalisation statistics,
so a loaded policy turns raw observations into de-normalised chunks in the embodiment's own
action space.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vla_core.embodiment import EmbodimentSpec
from vla_core.model.action_expert import ActionExpert
from vla_core.model.batching import Observation, collate_observations, pad_last
from vla_core.model.builtin_encoder import BuiltinVisionLanguageEncoder, WristEncoder
from vla_core.model.configuration import PolicyConfig
from vla_core.model.flow_matching import euler_integrate, interpolate, sample_tau, target_velocity
from vla_core.model.interfaces import EncodedTokens, VisionLanguageEncoder
from vla_core.model.losses import masked_flow_loss
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
    if config.backbone == "builtin":
        return BuiltinVisionLanguageEncoder(config.hidden_size, config.image_size, config.vision_width,
                                            config.num_heads, config.text_encoder_frozen, config.max_text_tokens)
    from vla_core.model.hf_backbone import HFVisionLanguageEncoder

    return HFVisionLanguageEncoder(config.backbone, image_size=config.image_size)


class VLAPolicy(nn.Module):
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
        self.frame_embedding = nn.Parameter(torch.randn(config.history_length, 1, self.vision_language.output_dim) * 0.02)
        self.wrist_in = nn.Linear(config.hidden_size, self.vision_language.output_dim)
        self.expert = ActionExpert(config, self.vision_language.output_dim, prompt_names=[])
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

    @property
    def device(self) -> torch.device:
        return self.expert.head.weight.device

    # ---- network ---------------------------------------------------------------------------
    def encode(self, batch: Mapping) -> EncodedTokens:
        """Observation tokens, computed once per chunk and reused by every Euler step."""
        main = batch["main_images"].to(self.device)  # (B, k, 3, S, S)
        frames = []
        for k in range(main.shape[1]):
            encoded = self.vision_language(main[:, k], batch["texts"])
            frames.append(EncodedTokens(encoded.tokens + self.frame_embedding[k], encoded.valid))
        wrist = self.wrist(batch["wrist_images"].to(self.device), batch["wrist_valid"].to(self.device))
        return EncodedTokens.concat([*frames, EncodedTokens(self.wrist_in(wrist.tokens), wrist.valid)])

    def forward(self, batch: Mapping, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Training loss on a batch with `actions` (B, H, K_max) normalised and `action_mask`."""
        actions = batch["actions"].to(self.device)
        mask = batch["action_mask"].to(self.device)
        size = actions.shape[0]
        noise = torch.randn(actions.shape, generator=generator).to(self.device)
        tau = sample_tau(size, self.config.tau_beta, self.device, generator)
        prefix_length = batch.get("prefix_length")
        if prefix_length is None:  # Xiaomi-Robotics-0: random committed prefix 0..d_max
            prefix_length = torch.randint(0, self.config.max_prefix + 1, (size,), generator=generator)
        prefix_length = prefix_length.to(self.device)
        is_prefix = (torch.arange(actions.shape[1], device=self.device)[None] < prefix_length[:, None])[..., None]
        noisy = torch.where(is_prefix, actions, interpolate(actions, noise, tau))
        velocity = self.expert(noisy, tau, batch["state"].to(self.device), prefix_length, batch["embodiments"],
                               self.encode(batch))
        loss = masked_flow_loss(velocity, target_velocity(actions, noise), mask & ~is_prefix)
        return {"loss": loss}

    def sample(self, batch: Mapping, observation: EncodedTokens | None = None, prefix: torch.Tensor | None = None,
               prefix_length: torch.Tensor | None = None, generator: torch.Generator | None = None,
               steps: int | None = None) -> torch.Tensor:
        """Normalised chunks (B, H, K_max) by Euler integration from seeded noise."""
        observation = observation if observation is not None else self.encode(batch)
        size = len(batch["embodiments"])
        shape = (size, self.config.horizon, self.config.max_action_dim)
        noise = torch.randn(shape, generator=generator).to(self.device)
        if prefix_length is None:
            prefix_length = torch.zeros(size, dtype=torch.long)
        prefix_length = prefix_length.to(self.device)
        state = batch["state"].to(self.device)

        def velocity(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
            return self.expert(x, tau, state, prefix_length, batch["embodiments"], observation)

        prefix = prefix.to(self.device) if prefix is not None else None
        return euler_integrate(velocity, noise, steps or self.config.flow_steps, prefix, prefix_length)

    # ---- checkpoints (the I/O lives in vla_core.checkpoint) ---------------------------------
    @classmethod
    def from_pretrained(cls, directory: str, device: str | torch.device = "cpu") -> VLAPolicy:
        from vla_core.checkpoint import load_pretrained

        return load_pretrained(directory, device)

    def save_pretrained(self, directory: str, metadata: dict | None = None):
        from vla_core.checkpoint import save_pretrained

        return save_pretrained(self, directory, metadata)

    # ---- inference API -----------------------------------------------------------------------
    def predict_chunks(self, observations: Sequence[Observation], instructions: Sequence[str], embodiment: str,
                       prefixes: Sequence[np.ndarray | None] | None = None,
                       seed: int | None = None) -> list[PredictedChunk]:
        """Chunks for a batch of observations of one embodiment.

        `prefixes[i]` is the committed prefix (d, K) in the embodiment's action space (de-normalised);
        at most `config.max_prefix` rows are used, and the chunk says how many.
        """
        spec = self.embodiment(embodiment)
        stats = self.normalizers[embodiment]
        prefixes = list(prefixes) if prefixes is not None else [None] * len(observations)
        if len(prefixes) != len(observations):
            raise ValueError(f"{len(prefixes)} prefixes for {len(observations)} observations")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        prefix_tensor = torch.zeros(len(observations), self.config.horizon, self.config.max_action_dim)
        lengths = torch.zeros(len(observations), dtype=torch.long)
        for i, prefix in enumerate(prefixes):
            if prefix is None or len(prefix) == 0:
                continue
            prefix = np.asarray(prefix, dtype=np.float64)
            if prefix.ndim != 2 or prefix.shape[1] != spec.action_dim or not np.all(np.isfinite(prefix)):
                raise ValueError(f"committed prefix must be finite (d, {spec.action_dim}) for {embodiment}, "
                                 f"got shape {prefix.shape}")
            used = min(len(prefix), self.config.max_prefix)
            prefix_tensor[i, :used] = pad_last(torch.from_numpy(stats.action.normalize(prefix[:used])).float(),
                                               self.config.max_action_dim)
            lengths[i] = used
        was_training = self.training
        self.eval()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        try:
            with torch.inference_mode(), autocast:
                start = time.perf_counter()
                batch = collate_observations(self.config, spec, stats, observations, instructions)
                observation = self.encode(batch)
                _synchronize(self.device)
                encoded = time.perf_counter()
                normalised = self.sample(batch, observation, prefix_tensor, lengths, generator)
                _synchronize(self.device)
                done = time.perf_counter()
        finally:
            self.train(was_training)
        actions = stats.action.denormalize(normalised[..., : spec.action_dim].float().cpu().numpy().astype(np.float64))
        return [
            PredictedChunk(actions[i], embodiment, spec.action_space, spec.channel_names, int(lengths[i]),
                           encoded - start, done - encoded)
            for i in range(len(observations))
        ]

    def predict_chunk(self, observation: Observation, instruction: str, embodiment: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        return self.predict_chunks([observation], [instruction], embodiment, [prefix], seed)[0]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
