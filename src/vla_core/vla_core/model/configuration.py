"""Every hyper-parameter of the policy, with its default and meaning; serialised as config.json.

The defaults are the configuration benchmarked in benchmarks/bench_model_latency.py: a chunk of
16 actions from a 224x224 main and a 224x224 wrist view in 22-31 ms on two CPU cores.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STRUCTURES = ("one_step", "history")
HEADS = ("flow", "regression")
TOOL_POSE_FEATURES = 9  # xyz + the rotation's first two columns (Zhou et al.'s 6D), per arm
OBJECT_POSE_FEATURES = 5  # the named object's xyz (dm) + sin and cos of four times its yaw (a cube's symmetry)


@dataclass
class PolicyConfig:
    # --- action expert (X-VLA's soft-prompted transformer) ------------------------------------
    hidden_size: int = 128  # D: width of every token of the expert and of the observation encoders
    depth: int = 4  # expert blocks (self-attention + cross-attention to the observation + MLP)
    num_heads: int = 4  # attention heads; hidden_size must be divisible by it
    mlp_ratio: float = 4.0  # MLP width / hidden_size
    dropout: float = 0.0  # dropout inside the expert's MLPs
    adaln: bool = True  # DiT's adaptive LayerNorm (shift, scale, gate) conditioned on the flow time
    attention_sink: bool = True  # one learned token every query may attend to (somewhere harmless to look)
    num_prompt_tokens: int = 4  # X-VLA soft prompt length per embodiment / data source
    # --- the unified action tensor (Qwen-VLA) --------------------------------------------------
    horizon: int = 16  # H: actions per chunk
    max_action_dim: int = 20  # K_max: channels of the unified action tensor (ALOHA's 2 x (9 + 1) fits)
    max_state_dim: int = 14  # proprioception padded to this size
    gripper_bce_weight: float = 0.0  # X-VLA's BCE on gripper channels (0 = off); adds a gripper-logit head
    # --- action head ----------------------------------------------------------------------------
    # "flow": flow matching, `flow_steps` Euler steps per chunk (pi0, X-VLA); "regression": one pass
    # of the same expert, L1 on the whole masked chunk (ACT, OpenVLA-OFT's parallel decoding)
    head: str = "flow"
    flow_steps: int = 10  # Euler steps at inference (1..10 is the sensible range)
    tau_beta: tuple[float, float] = (1.5, 1.0)  # noise level s ~ Beta(a, b), tau = 1 - 0.999 s; a > b favours noisy
    time_embedding_dim: int = 64  # sinusoidal features of tau fused into every step token
    # --- asynchronous execution (Xiaomi-Robotics-0) -------------------------------------------
    max_prefix: int = 8  # d_max: longest committed prefix; training draws 0..d_max per sample
    lambda_width: int = 4  # generated steps right after the prefix that may attend to it (Lambda mask)
    # --- observation ---------------------------------------------------------------------------
    structure: str = "one_step"  # RoboVLMs: "one_step" (current frame) or "history" (k frames)
    history_length: int = 1  # k main-view frames for "history" (1 for "one_step")
    backbone: str = "builtin"  # "builtin" (conv stem + MiniLM), or a local Hugging Face VLM directory
    image_size: int = 96  # main view resized to this square (multiple of 16: one token per 16 px patch)
    wrist_image_size: int = 64  # wrist views resized to this square (multiple of 16)
    max_wrist_views: int = 2  # wrist camera slots; an embodiment may use fewer
    vision_width: int = 64  # channels of the built-in conv stems
    text_encoder_frozen: bool = True  # pretrained language weights (MiniLM or the HF VLM) stay frozen
    max_text_tokens: int = 64  # instruction prompt truncated to this many tokens
    main_keypoints: int = 0  # instructed keypoints of each main view given to the expert beside the state (builtin only)
    tool_pose_arms: int = 0  # each arm's end-effector pose (xyz + rotation 6D) read beside the joints, for up to this many arms (0 = off)
    state_velocity: bool = False  # the joints' velocity (backward difference over one control period) read beside the joints
    # diagnosis only: the true pose of the named object replaces the camera views (no vision at all), so
    # success measures action learning + execution alone; the policy node refuses such a checkpoint
    privileged_object_pose: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the checkpoint

    def __post_init__(self) -> None:
        self.tau_beta = tuple(self.tau_beta)
        problems = _type_problems(self)
        if problems:  # the value checks below assume the right types
            raise ValueError("invalid PolicyConfig: " + "; ".join(problems))
        positive = ("hidden_size", "depth", "num_heads", "horizon", "max_action_dim", "max_state_dim",
                    "num_prompt_tokens", "time_embedding_dim", "history_length", "max_wrist_views",
                    "vision_width", "lambda_width", "max_text_tokens")
        problems = [f"{name} must be >= 1, got {getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        if self.time_embedding_dim % 2:
            problems.append(f"time_embedding_dim must be even (sin and cos halves), got {self.time_embedding_dim}")
        if not 1 <= self.flow_steps <= 100:
            problems.append(f"flow_steps must be in 1..100, got {self.flow_steps}")
        if len(self.tau_beta) != 2 or min(self.tau_beta) <= 0:
            problems.append(f"tau_beta must be two positive numbers (alpha, beta), got {list(self.tau_beta)}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.mlp_ratio <= 0 or self.gripper_bce_weight < 0:
            problems.append(f"mlp_ratio must be > 0 and gripper_bce_weight >= 0, got {self.mlp_ratio} and "
                            f"{self.gripper_bce_weight}")
        if self.head not in HEADS:
            problems.append(f"head must be one of {HEADS}, got {self.head!r}")
        if self.structure not in STRUCTURES:
            problems.append(f"structure must be one of {STRUCTURES}, got {self.structure!r}")
        if self.structure == "one_step" and self.history_length != 1:
            problems.append("history_length must be 1 for structure 'one_step'")
        if not 0 <= self.max_prefix < self.horizon:
            problems.append(f"max_prefix must be in 0..horizon-1={self.horizon - 1}, got {self.max_prefix}")
        for name in ("image_size", "wrist_image_size"):
            if getattr(self, name) < 16 or getattr(self, name) % 16:
                problems.append(f"{name} must be a positive multiple of 16, got {getattr(self, name)}")
        if self.tool_pose_arms < 0:
            problems.append(f"tool_pose_arms must be >= 0, got {self.tool_pose_arms}")
        if self.main_keypoints < 0 or (self.main_keypoints and self.backbone != "builtin"):
            problems.append(f"main_keypoints must be >= 0, and 0 unless backbone is 'builtin' (the keypoints read "
                            f"its stem), got {self.main_keypoints} with backbone {self.backbone!r}")
        if self.privileged_object_pose and self.main_keypoints:
            problems.append("privileged_object_pose replaces the camera views, so main_keypoints (read from the main "
                            f"view) must be 0, got {self.main_keypoints}")
        if problems:
            raise ValueError("invalid PolicyConfig: " + "; ".join(problems))

    @property
    def state_features(self) -> int:
        """Numbers of the batch's `state`: the padded joints, their padded velocities when the policy
        reads them, then 9 per arm slot of tool poses."""
        return self.max_state_dim * (1 + self.state_velocity) + TOOL_POSE_FEATURES * self.tool_pose_arms

    @property
    def keypoint_features(self) -> int:
        """Numbers the keypoints add to every step token: (x, y) per keypoint and main view."""
        return 2 * self.main_keypoints * self.history_length

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tau_beta"] = list(self.tau_beta)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        if not isinstance(data, dict):
            raise ValueError(f"a PolicyConfig is read from a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PolicyConfig field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**data)


def _type_problems(config: PolicyConfig) -> list[str]:
    """Fields whose value does not have the type of their default (JSON ints pass as floats)."""
    problems = []
    for spec in dataclasses.fields(config):
        default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default
        value = getattr(config, spec.name)
        expected: tuple[type, ...] = (float, int) if isinstance(default, float) else (type(default),)
        if isinstance(value, bool) and not isinstance(default, bool) or not isinstance(value, expected):
            problems.append(f"{spec.name} must be of type {type(default).__name__}, got {value!r}")
        elif isinstance(default, tuple) and not all(isinstance(v, (int, float)) for v in value):
            problems.append(f"{spec.name} must hold numbers, got {list(value)}")
    return problems
