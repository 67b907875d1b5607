"""Seeded image augmentation of training batches: a random shift (a crop of the edge-padded image)
and colour jitter (brightness, contrast, saturation), drawn from the micro-batch's generator so
that a resumed or re-sharded run augments identically.

The main view's history frames of one sample share one draw (the camera did not move between
them); each wrist view gets its own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_GRAY = torch.tensor([0.299, 0.587, 0.114]).view(1, 1, 3, 1, 1)


def _uniform(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


def augment_views(images: torch.Tensor, generator: torch.Generator, shift: float, color: float) -> torch.Tensor:
    """images (N, V, 3, S, S) in [0, 1]; one draw per n, shared over its V views."""
    count, views, _, size, _ = images.shape
    out = images
    pad = round(shift * size)
    if pad > 0:
        padded = F.pad(images.flatten(0, 1), (pad, pad, pad, pad), mode="replicate").unflatten(0, (count, views))
        offsets = torch.randint(0, 2 * pad + 1, (count, 2), generator=generator)
        out = torch.stack([padded[n, :, :, y:y + size, x:x + size] for n, (y, x) in enumerate(offsets.tolist())])
    if color > 0:
        shape = (count, 1, 1, 1, 1)
        brightness = _uniform(count, 1 - color, 1 + color, generator).view(shape)
        contrast = _uniform(count, 1 - color, 1 + color, generator).view(shape)
        saturation = _uniform(count, 1 - color, 1 + color, generator).view(shape)
        out = out * brightness
        mean = out.mean(dim=(2, 3, 4), keepdim=True)
        out = (out - mean) * contrast + mean
        gray = (out * _GRAY.to(out.device)).sum(dim=2, keepdim=True)
        out = ((out - gray) * saturation + gray).clamp(0.0, 1.0)
    return out


def augment_batch(batch: dict, generator: torch.Generator, shift: float, color: float) -> dict:
    """A copy of `batch` with its main and wrist images augmented."""
    wrists = batch["wrist_images"]
    flat = wrists.flatten(0, 1)[:, None]  # every wrist view its own draw
    return {**batch,
            "main_images": augment_views(batch["main_images"], generator, shift, color),
            "wrist_images": augment_views(flat, generator, shift, color)[:, 0].unflatten(0, wrists.shape[:2])}
