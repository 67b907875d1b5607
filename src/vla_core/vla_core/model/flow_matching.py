"""Flow matching on action chunks (the convention shared by pi0, X-VLA and Xiaomi-Robotics-0).

Path: x_tau = tau * a + (1 - tau) * noise, tau in [0, 1]; tau = 0 is pure noise, tau = 1 the
clean chunk. The network regresses the constant velocity a - noise. Training draws the noise
level s = 1 - tau from Beta(alpha, beta) (alpha > beta puts the mass on noisy steps, where
prediction is hardest). Inference integrates dx/dtau = v from noise with a few Euler steps;
committed prefix rows are held at their clean values throughout.
"""
from __future__ import annotations

from collections.abc import Callable

import scipy.special
import torch


def sample_tau(batch: int, beta: tuple[float, float], device: torch.device,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """tau = 1 - 0.999 s with s ~ Beta(alpha, beta).

    Drawn by inverting the Beta CDF at uniforms from `generator`, so a seeded generator gives
    the same taus every run (torch's Beta sampler takes no generator).
    """
    uniform = torch.rand(batch, generator=generator, dtype=torch.float64)
    s = torch.from_numpy(scipy.special.betaincinv(beta[0], beta[1], uniform.numpy()))
    return (1.0 - 0.999 * s).to(device=device, dtype=torch.float32)


def interpolate(actions: torch.Tensor, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    t = tau.view(-1, *([1] * (actions.dim() - 1)))
    return t * actions + (1.0 - t) * noise


def target_velocity(actions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return actions - noise


def euler_integrate(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                    steps: int, prefix: torch.Tensor | None = None,
                    prefix_length: torch.Tensor | None = None) -> torch.Tensor:
    """Integrate from tau = 0 (noise) to 1 in `steps` Euler steps.

    `velocity(x, tau)` is called once per step. Rows below `prefix_length` (B,) are set to
    `prefix` (B, H, K) before every call and at the end.
    """
    if steps < 1:
        raise ValueError(f"Euler integration needs at least one step, got {steps}")
    x = noise
    keep = None
    if prefix is not None and prefix_length is not None:
        rows = torch.arange(noise.shape[1], device=noise.device)
        keep = (rows[None] < prefix_length[:, None])[..., None]
    dt = 1.0 / steps
    for i in range(steps):
        if keep is not None:
            x = torch.where(keep, prefix, x)
        tau = torch.full((noise.shape[0],), i * dt, device=noise.device, dtype=noise.dtype)
        x = x + dt * velocity(x, tau)
    return torch.where(keep, prefix, x) if keep is not None else x
