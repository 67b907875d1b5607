"""Every hyper-parameter of the policy, with its default and meaning; serialised as config.json."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STRUCTURES = ("one_step", "history")


@dataclass
class PolicyConfig:
    # --- action expert (X-VLA-style transformer over prompt + step tokens) --------------------
    hidden_size: int = 128  # D: width of every token
    depth: int = 4  # expert blocks (self-attention + cross-attention to the observation + MLP)
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    adaln: bool = True  # DiT's adaptive LayerNorm conditioned on the flow time
    attention_sink: bool = True  # one learned token every query may attend to (stabilises attention)
    num_prompt_tokens: int = 4  # X-VLA soft prompt length per embodiment / data source
    # --- the unified action tensor (Qwen-VLA) --------------------------------------------------
    horizon: int = 16  # H: steps per chunk
    max_action_dim: int = 20  # K_max: channels of the unified action tensor (ALOHA needs 20)
    max_state_dim: int = 14  # proprioception padded to this size
    # --- flow matching ------------------------------------------------------------------------
    flow_steps: int = 10  # Euler steps at inference (1..10 sensible)
    tau_beta: tuple[float, float] = (1.5, 1.0)  # noise level s ~ Beta(a, b), tau = 1 - 0.999 s: favours noisy
    time_embedding_dim: int = 64  # sinusoidal features of tau
    # --- asynchronous execution (Xiaomi-Robotics-0) -------------------------------------------
    max_prefix: int = 8  # d_max: longest committed prefix seen in training (random 0..d_max)
    lambda_width: int = 4  # generated steps after the prefix that may attend to it (Lambda mask)
    # --- observation ---------------------------------------------------------------------------
    structure: str = "one_step"  # RoboVLMs: "one_step" (current frame) or "history" (k frames)
    history_length: int = 1  # k main-view frames for "history"
    backbone: str = "builtin"  # "builtin", or a local Hugging Face VLM directory
    image_size: int = 96  # main view resized to this square for the built-in encoder
    wrist_image_size: int = 64
    max_wrist_views: int = 2
    vision_width: int = 64  # channels of the built-in conv stems
    text_encoder_frozen: bool = True  # MiniLM weights stay pretrained unless fine-tuned on purpose
    max_text_tokens: int = 64
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the checkpoint

    def __post_init__(self) -> None:
        problems = []
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        if not 1 <= self.flow_steps <= 100:
            problems.append(f"flow_steps must be in 1..100, got {self.flow_steps}")
        if self.structure not in STRUCTURES:
            problems.append(f"structure must be one of {STRUCTURES}, got {self.structure!r}")
        if self.structure == "one_step" and self.history_length != 1:
            problems.append("history_length must be 1 for structure 'one_step'")
        if not 0 <= self.max_prefix < self.horizon:
            problems.append(f"max_prefix must be in 0..horizon-1={self.horizon - 1}, got {self.max_prefix}")
        for name in ("hidden_size", "depth", "horizon", "max_action_dim", "max_state_dim", "num_prompt_tokens",
                     "history_length", "image_size", "wrist_image_size", "lambda_width"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid PolicyConfig: " + "; ".join(problems))
        self.tau_beta = tuple(self.tau_beta)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tau_beta"] = list(self.tau_beta)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PolicyConfig field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**data)
