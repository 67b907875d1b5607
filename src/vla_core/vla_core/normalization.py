"""Per-channel normalisation of actions and proprioception; the statistics travel in checkpoints.

"quantile" (RoboVLMs): clamp to the 1st/99th percentile and scale linearly to [-1, 1]; robust to
teleoperation outliers. "mean_std": (x - mean) / std. Channels marked `passthrough` (binary
grippers) are left as they are. A constant channel maps to 0 and back to its constant, with no
division by zero.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
KINDS = ("quantile", "mean_std")
_EPS = 1e-8


@dataclass
class Normalizer:
    kind: str
    low: np.ndarray  # quantile: q01; mean_std: mean
    high: np.ndarray  # quantile: q99; mean_std: std
    passthrough: np.ndarray  # bool per channel

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown normalisation kind {self.kind!r}; expected one of {KINDS}")
        self.low = np.asarray(self.low, dtype=np.float64)
        self.high = np.asarray(self.high, dtype=np.float64)
        self.passthrough = np.asarray(self.passthrough, dtype=bool)
        if not (self.low.shape == self.high.shape == self.passthrough.shape) or self.low.ndim != 1:
            raise ValueError(f"normaliser statistics must be equal-length vectors, got shapes "
                             f"{self.low.shape}, {self.high.shape}, {self.passthrough.shape}")

    @property
    def dim(self) -> int:
        return len(self.low)

    @classmethod
    def fit(cls, data: np.ndarray, kind: str = "quantile", mask: np.ndarray | None = None,
            passthrough: Sequence[bool] | None = None) -> Normalizer:
        """Statistics of `data` (N, K) over the entries where `mask` (N, K) is True."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or len(data) == 0:
            raise ValueError(f"normaliser data must be (N, K) with N >= 1, got shape {data.shape}")
        mask = np.ones(data.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} does not match data shape {data.shape}")
        low, high = np.zeros(data.shape[1]), np.ones(data.shape[1])
        for k in range(data.shape[1]):
            column = data[mask[:, k], k]
            if column.size == 0:
                continue  # channel never valid: identity-like stats
            if kind == "quantile":
                low[k], high[k] = np.quantile(column, [0.01, 0.99])
            elif kind == "mean_std":
                low[k], high[k] = column.mean(), column.std()
            else:
                raise ValueError(f"unknown normalisation kind {kind!r}; expected one of {KINDS}")
        flags = np.zeros(data.shape[1], bool) if passthrough is None else np.asarray(passthrough, bool)
        return cls(kind, low, high, flags)

    def _stats(self, like: Array) -> tuple[Array, Array, Array]:
        if isinstance(like, torch.Tensor):
            convert = lambda v: torch.as_tensor(v, dtype=like.dtype, device=like.device)  # noqa: E731
            return convert(self.low), convert(self.high), torch.as_tensor(self.passthrough, device=like.device)
        return self.low, self.high, self.passthrough

    def _check(self, x: Array) -> None:
        if x.shape[-1] != self.dim:
            raise ValueError(f"normaliser has {self.dim} channels, got data with {x.shape[-1]} (shape {tuple(x.shape)})")

    def normalize(self, x: Array) -> Array:
        self._check(x)
        low, high, passthrough = self._stats(x)
        if self.kind == "quantile":
            span = high - low
            clipped = _clip(x, low, high)
            scaled = _where(span > _EPS, 2 * (clipped - low) / _safe(span) - 1, clipped * 0)
        else:
            scaled = _where(high > _EPS, (x - low) / _safe(high), x - low)
        return _where(passthrough, x, scaled)

    def scale_rate(self, rate: Array) -> Array:
        """A rate of change of the normalised quantity (a joint velocity) on the normalised scale:
        the slope of `normalize`, without its offset or clipping, so a joint's velocity reads in
        the units of its position."""
        self._check(rate)
        low, high, passthrough = self._stats(rate)
        if self.kind == "quantile":
            spread = (high - low) / 2
            scaled = _where(spread > _EPS, rate / _safe(spread), rate * 0)
        else:
            scaled = _where(high > _EPS, rate / _safe(high), rate)
        return _where(passthrough, rate, scaled)

    def denormalize(self, y: Array) -> Array:
        self._check(y)
        low, high, passthrough = self._stats(y)
        if self.kind == "quantile":
            span = high - low
            values = _where(span > _EPS, (y + 1) / 2 * span + low, y * 0 + low)
        else:
            values = _where(high > _EPS, y * high + low, y + low)
        return _where(passthrough, y, values)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": self.low.tolist(), "high": self.high.tolist(),
                "passthrough": self.passthrough.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        missing = {"kind", "low", "high", "passthrough"} - set(data)
        if missing:
            raise ValueError(f"normaliser statistics miss the fields {sorted(missing)}")
        return cls(data["kind"], np.asarray(data["low"]), np.asarray(data["high"]), np.asarray(data["passthrough"]))


def _clip(x: Array, low: Array, high: Array) -> Array:
    return torch.clamp(x, low, high) if isinstance(x, torch.Tensor) else np.clip(x, low, high)


def _where(condition, a: Array, b: Array) -> Array:
    return torch.where(condition, a, b) if isinstance(a, torch.Tensor) else np.where(condition, a, b)


def _safe(values: Array) -> Array:
    """Divisor with near-zero entries replaced by 1 (those entries are masked out by _where)."""
    if isinstance(values, torch.Tensor):
        return torch.where(values.abs() > _EPS, values, torch.ones_like(values))
    return np.where(np.abs(values) > _EPS, values, 1.0)


@dataclass
class EmbodimentNormalizers:
    """The statistics one embodiment's data is normalised with: its action channels and its state."""

    action: Normalizer
    state: Normalizer

    @classmethod
    def identity(cls, action_dim: int, state_dim: int) -> EmbodimentNormalizers:
        """Statistics that leave data unchanged (mean 0, std 1): for untrained or synthetic policies."""
        return cls(
            Normalizer("mean_std", np.zeros(action_dim), np.ones(action_dim), np.zeros(action_dim, bool)),
            Normalizer("mean_std", np.zeros(state_dim), np.ones(state_dim), np.zeros(state_dim, bool)),
        )

    def to_dict(self) -> dict:
        return {"action": self.action.to_dict(), "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> EmbodimentNormalizers:
        missing = {"action", "state"} - set(data)
        if missing:
            raise ValueError(f"embodiment statistics miss {sorted(missing)}")
        return cls(Normalizer.from_dict(data["action"]), Normalizer.from_dict(data["state"]))
