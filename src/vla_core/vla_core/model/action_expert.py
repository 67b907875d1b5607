"""The action expert: a transformer that predicts the flow-matching velocity of an action chunk.

Sequence, per sample (X-VLA):  [soft prompt (P tokens) | attention sink (1) | step tokens (H)]
- the soft prompt is a learned (P, D) tensor per embodiment or data source, injected at the
  input so every layer sees which robot it is driving (X-VLA);
- the sink is one learned token every query may attend to, so attention has somewhere harmless
  to go;
- step token t = Linear([proprio, keypoints, action_t, time-features(tau_t)]): proprio (the
  joints, and each arm's end-effector pose when the policy reads them), the main view's
  instructed keypoints (when the policy has them), the noisy action and the flow time fused by
  ONE linear layer (X-VLA), plus a learned position per step.
Every block: self-attention over the sequence, cross-attention to the observation tokens, MLP;
with AdaLN (DiT) the norms are modulated by the flow time.

Committed prefix (Xiaomi-Robotics-0): the first d step tokens hold clean committed actions
(tau = 1) and get a learned offset embedding that tells them apart from generated steps. The
Lambda-shaped mask lets only the first `lambda_width` generated steps attend to the prefix, so
later steps cannot copy it and keep reading the image; prefix tokens see only the prompt, the
sink and each other.

With `gripper_bce_weight > 0` a second linear head reads gripper logits from the same step
states (X-VLA trains its gripper channel with BCE and applies a sigmoid at the end).

Inference calls the expert once per Euler step with the same observation and prefix, so what
depends only on them (every block's cross-attention keys and values of the observation, the
masks, the prompt and sink tokens) is computed once per chunk by `prepare_context` and read by
`velocity` at every step. Training's `forward` is the same two calls, with a fresh context.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from vla_core.model.configuration import PolicyConfig
from vla_core.model.interfaces import EncodedTokens
from vla_core.model.layers import Attention, FeedForward, sinusoidal_embedding


class ExpertOutput(NamedTuple):
    velocity: torch.Tensor  # (B, H, K_max) flow-matching velocity of every step
    gripper_logits: torch.Tensor | None  # (B, H, K_max) when the policy has a gripper head


class ExpertContext(NamedTuple):
    """What stays fixed while one chunk is denoised: made once by `ActionExpert.prepare_context`."""

    head: torch.Tensor  # (B, P (+1), D) soft prompt (and sink) tokens in front of the steps
    is_prefix: torch.Tensor  # (B, H) bool: committed prefix steps
    self_mask: torch.Tensor  # (B, 1, L, L) bool: the Lambda-shaped self-attention mask
    observation_mask: torch.Tensor  # (B, 1, 1, N) bool: valid observation tokens
    observation_key_values: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per block: cross-attention K, V
    keypoints: torch.Tensor  # (B, config.keypoint_features) read beside the state; (B, 0) without keypoints


class ExpertBlock(nn.Module):
    """Self-attention over [prompt, sink, steps], cross-attention to the observation, MLP.

    With AdaLN (DiT) the self-attention and MLP norms are shifted, scaled and gated by the flow
    time; the modulation starts at zero, so with AdaLN an untrained block is the identity there.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, adaln: bool, dropout: float) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim, elementwise_affine=not adaln)
        self.self_attention = Attention(dim, heads)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross_attention = Attention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim, elementwise_affine=not adaln)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim)) if adaln else None
        if self.modulation is not None:
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor, self_mask: torch.Tensor,
                observation_key_value: tuple[torch.Tensor, torch.Tensor],
                observation_mask: torch.Tensor) -> torch.Tensor:
        if self.modulation is None:
            shift1 = scale1 = shift2 = scale2 = 0.0
            gate1 = gate2 = 1.0
        else:
            shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(condition)[:, None].chunk(6, dim=-1)
        x = x + gate1 * self.self_attention(self.norm_self(x) * (1 + scale1) + shift1, mask=self_mask)
        x = x + self.cross_attention(self.norm_cross(x), mask=observation_mask, key_value=observation_key_value)
        return x + gate2 * self.mlp(self.norm_mlp(x) * (1 + scale2) + shift2)


class ActionExpert(nn.Module):
    """The velocity network over [soft prompt, sink, steps]; see the module docstring."""

    def __init__(self, config: PolicyConfig, observation_dim: int, prompt_names: Sequence[str]) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.prompts = nn.ParameterDict()
        for name in prompt_names:
            self.add_prompt(name)
        self.sink = nn.Parameter(torch.randn(1, 1, dim) * 0.02) if config.attention_sink else None
        self.step_in = nn.Linear(config.state_features + config.keypoint_features + config.max_action_dim
                                 + config.time_embedding_dim, dim)
        self.step_positions = nn.Parameter(torch.randn(1, config.horizon, dim) * 0.02)
        self.prefix_offset = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.time_condition = nn.Sequential(nn.Linear(config.time_embedding_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.observation_in = nn.Linear(observation_dim, dim) if observation_dim != dim else nn.Identity()
        self.blocks = nn.ModuleList(
            ExpertBlock(dim, config.num_heads, config.mlp_ratio, config.adaln, config.dropout)
            for _ in range(config.depth)
        )
        self.norm_out = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.max_action_dim)
        self.gripper_head = nn.Linear(dim, config.max_action_dim) if config.gripper_bce_weight > 0 else None

    @property
    def prompt_names(self) -> list[str]:
        return list(self.prompts.keys())

    def add_prompt(self, name: str, initial: torch.Tensor | None = None) -> None:
        """A new soft prompt (X-VLA: a new robot gets a new prompt), random or copied from `initial`."""
        if name in self.prompts:
            raise ValueError(f"soft prompt {name!r} already exists")
        shape = (self.config.num_prompt_tokens, self.config.hidden_size)
        value = torch.randn(shape) * 0.02 if initial is None else initial.detach().clone()
        device = next((p.device for p in self.parameters()), torch.device("cpu"))
        self.prompts[name] = nn.Parameter(value.to(device))

    def prompt_tokens(self, names: Sequence[str]) -> torch.Tensor:
        unknown = sorted(set(names) - set(self.prompts.keys()))
        if unknown:
            raise KeyError(f"no soft prompt for {unknown}; known: {self.prompt_names}")
        return torch.stack([self.prompts[name] for name in names])

    def attention_mask(self, prefix_length: torch.Tensor) -> torch.Tensor:
        """(B, 1, L, L) bool: the Lambda-shaped mask over [prompt, sink, steps]."""
        batch, horizon = prefix_length.shape[0], self.config.horizon
        head = self.config.num_prompt_tokens + (1 if self.sink is not None else 0)
        length = head + horizon
        device = prefix_length.device
        step = torch.arange(horizon, device=device)
        d = prefix_length[:, None]
        query_is_prefix = (step[None] < d)[:, :, None]  # (B, H, 1)
        key_is_prefix = (step[None] < d)[:, None, :]  # (B, 1, H)
        query_offset = (step[None] - d)[:, :, None]  # generated step index after the prefix
        step_to_step = torch.where(
            query_is_prefix, key_is_prefix,  # prefix queries: prefix keys only
            ~key_is_prefix | (query_offset < self.config.lambda_width),  # generated: all generated + early see prefix
        )
        mask = torch.ones(batch, length, length, dtype=torch.bool, device=device)
        mask[:, head:, head:] = step_to_step
        mask[:, :head, head:] = False  # prompt and sink tokens do not read the (noisy) steps
        return mask[:, None]

    def prepare_context(self, observation: EncodedTokens, prefix_length: torch.Tensor,
                        embodiments: Sequence[str]) -> ExpertContext:
        """Everything `velocity` needs that does not change over the Euler steps of a chunk:
        `observation` tokens, committed `prefix_length` (B,) and each sample's embodiment."""
        batch = prefix_length.shape[0]
        parts = [self.prompt_tokens(embodiments)]
        if self.sink is not None:
            parts.append(self.sink.expand(batch, -1, -1))
        tokens = self.observation_in(observation.tokens)
        keypoints = observation.keypoints.flatten(1) if observation.keypoints is not None else tokens.new_zeros(batch, 0)
        if keypoints.shape[1] != self.config.keypoint_features:
            raise ValueError(f"the expert reads {self.config.keypoint_features} keypoint numbers (main_keypoints "
                             f"{self.config.main_keypoints}), the observation has {keypoints.shape[1]}")
        step = torch.arange(self.config.horizon, device=prefix_length.device)
        return ExpertContext(
            head=torch.cat(parts, dim=1),
            is_prefix=step[None] < prefix_length[:, None],
            self_mask=self.attention_mask(prefix_length),
            observation_mask=observation.valid[:, None, None, :],
            observation_key_values=tuple(block.cross_attention.key_value(tokens) for block in self.blocks),
            keypoints=keypoints,
        )

    def velocity(self, actions: torch.Tensor, tau: torch.Tensor, state: torch.Tensor,
                 context: ExpertContext) -> ExpertOutput:
        """Velocity (B, H, K_max) at flow time `tau` (B,) of `actions` (B, H, K_max), whose
        committed prefix rows hold clean actions; `state` (B, config.state_features)."""
        horizon = actions.shape[1]
        is_prefix = context.is_prefix
        step_tau = torch.where(is_prefix, torch.ones_like(is_prefix, dtype=tau.dtype), tau[:, None])
        time_features = sinusoidal_embedding(step_tau, self.config.time_embedding_dim).to(actions.dtype)
        proprio = torch.cat([state, context.keypoints.to(state.dtype)], dim=-1)[:, None].expand(-1, horizon, -1)
        steps = self.step_in(torch.cat([proprio, actions, time_features], dim=-1)) + self.step_positions[:, :horizon]
        steps = steps + is_prefix[..., None].to(steps.dtype) * self.prefix_offset
        x = torch.cat([context.head.to(steps.dtype), steps], dim=1)
        condition = self.time_condition(sinusoidal_embedding(tau, self.config.time_embedding_dim).to(actions.dtype))
        for block, key_value in zip(self.blocks, context.observation_key_values, strict=True):
            x = block(x, condition, context.self_mask, key_value, context.observation_mask)
        step_states = self.norm_out(x[:, context.head.shape[1]:])
        logits = self.gripper_head(step_states) if self.gripper_head is not None else None
        return ExpertOutput(self.head(step_states), logits)

    def forward(self, actions: torch.Tensor, tau: torch.Tensor, state: torch.Tensor, prefix_length: torch.Tensor,
                embodiments: Sequence[str], observation: EncodedTokens) -> ExpertOutput:
        """One velocity with a fresh context (training); see `prepare_context` and `velocity`."""
        return self.velocity(actions, tau, state, self.prepare_context(observation, prefix_length, embodiments))
