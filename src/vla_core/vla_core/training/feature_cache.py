"""What the frozen conv stems make of every training frame, computed once and kept on disk.

Why: on a CPU the stems' convolutions are most of a training step (the main view's stem alone
about half), yet once they are frozen their output for a frame never changes. A run that
freezes them (`freeze_stems_at`) computes, per training frame, the main view's stem tokens and
stride-8 map and every wrist view's patch tokens once, stores them as float16 arrays, and from
then on trains everything after the stems (text fusion, keypoints, action expert, soft prompts)
on those arrays: many passes over the data for the price of the expert alone.

A cache is only ever used for the stems and frames it was made from: its directory carries a
fingerprint of the stems' weights, the image sizes and every frame's pixels (a hash of the
decoded arrays), written last; a directory whose fingerprint differs, or that a crash left
without one, is rebuilt, never read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_core.model.batching import image_tensor
from vla_core.model.policy import VLAPolicy
from vla_core.training.samples import EpisodeChunks

LOGGER = logging.getLogger(__name__)
FINGERPRINT_FILE = "fingerprint.json"
BUILD_BATCH = 128  # frames per stem forward while building
ARRAYS = ("main_tokens", "main_fine", "wrist_tokens")


def stem_fingerprint(policy: VLAPolicy) -> str:
    """sha256 of the stems' parameters and buffers (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for prefix, module in sorted(policy.stem_modules().items()):
        for name, tensor in sorted(module.state_dict().items()):
            value = tensor.detach().cpu().contiguous()
            digest.update(f"{prefix}.{name}:{tuple(value.shape)}:{value.dtype}".encode())
            digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def frames_fingerprint(episodes: Sequence[EpisodeChunks]) -> str:
    """sha256 of every frame the stems read (each camera's decoded arrays), in episode order."""
    digest = hashlib.sha256()
    for chunks in episodes:
        spec = chunks.spec
        digest.update(f"{chunks.episode.name}:{len(chunks)}".encode())
        for camera in [spec.main_camera, *spec.wrist_cameras]:
            frames = np.ascontiguousarray(chunks.episode.images[camera.name])
            digest.update(f"{camera.name}:{frames.shape}:{frames.dtype}".encode())
            digest.update(memoryview(frames).cast("B"))
    return digest.hexdigest()


@dataclass
class DatasetFeatures:
    """The cached stem outputs of one dataset's training episodes, frames back to back."""

    main_tokens: np.ndarray  # (F, N, D) float16
    main_fine: np.ndarray  # (F, C, h, w) float16
    wrist_tokens: np.ndarray  # (F, V, n, D) float16: every wrist slot, a blank view's where the robot has none
    offsets: np.ndarray  # (E + 1,) first frame of each episode, then F

    def rows(self, episode: int, frames: np.ndarray) -> np.ndarray:
        return self.offsets[episode] + frames


class FeatureCache:
    """Per dataset, the frozen stems' outputs for every training frame (see the module docstring)."""

    def __init__(self, datasets: list[DatasetFeatures]) -> None:
        self.datasets = datasets

    @classmethod
    def open_or_build(cls, directory: str | Path, policy: VLAPolicy,
                      datasets: Sequence[Sequence[EpisodeChunks]]) -> FeatureCache:
        """The cache under `directory` if its fingerprint matches these stems and frames, else a
        new one built there (the stale one is removed first)."""
        directory = Path(directory)
        stems = stem_fingerprint(policy)
        config = policy.config
        loaded = []
        for index, episodes in enumerate(datasets):
            expected = {"stems": stems, "frames": frames_fingerprint(episodes), "image_size": config.image_size,
                        "wrist_image_size": config.wrist_image_size, "max_wrist_views": config.max_wrist_views}
            place = directory / f"dataset_{index}"
            marker = place / FINGERPRINT_FILE
            found = json.loads(marker.read_text()) if marker.is_file() else None
            if found != expected:
                reason = "none there" if found is None else "stems or frames changed"
                LOGGER.info("building the feature cache of dataset %d in %s (%s)", index, place, reason)
                shutil.rmtree(place, ignore_errors=True)
                _build(place, policy, episodes)
                marker.write_text(json.dumps(expected, indent=1))  # last: a cut-off build has no marker
            loaded.append(DatasetFeatures(
                *(np.load(place / f"{name}.npy", mmap_mode="r") for name in ARRAYS),
                offsets=np.load(place / "offsets.npy")))
        return cls(loaded)

    def batch(self, dataset: int, episode: int, frames: np.ndarray, history_length: int
              ) -> dict[str, torch.Tensor]:
        """`main_tokens` (B, k, N, D), `main_fine` (B, k, C, h, w) and `wrist_tokens` (B, V, n, D),
        float32, for `frames` of one episode; the history repeats the first frame before the
        episode's start, as `EpisodeChunks.observation` does."""
        features = self.datasets[dataset]
        history = [features.rows(episode, np.maximum(frames - back, 0)) for back in range(history_length - 1, -1, -1)]
        rows = np.stack(history, axis=1)  # (B, k)
        return {"main_tokens": torch.from_numpy(features.main_tokens[rows].astype(np.float32)),
                "main_fine": torch.from_numpy(features.main_fine[rows].astype(np.float32)),
                "wrist_tokens": torch.from_numpy(features.wrist_tokens[features.rows(episode, frames)]
                                                 .astype(np.float32))}


@torch.no_grad()
def _build(place: Path, policy: VLAPolicy, episodes: Sequence[EpisodeChunks]) -> None:
    place.mkdir(parents=True)
    config = policy.config
    lengths = [len(chunks) for chunks in episodes]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total = int(offsets[-1])
    was_training = policy.training
    policy.eval()
    arrays: dict[str, np.ndarray] = {}
    try:
        for chunks, start in zip(episodes, offsets[:-1]):
            spec = chunks.spec
            main = chunks.episode.images[spec.main_camera.name]
            wrists = [chunks.episode.images[camera.name] for camera in spec.wrist_cameras]
            for first in range(0, len(chunks), BUILD_BATCH):
                span = slice(first, min(first + BUILD_BATCH, len(chunks)))
                tokens, fine = policy.vision_language.stem_features(_views(main[span], config.image_size))
                wrist = torch.zeros(tokens.shape[0], config.max_wrist_views, 3, config.wrist_image_size,
                                    config.wrist_image_size)
                for slot, frames in enumerate(wrists):
                    wrist[:, slot] = _views(frames[span], config.wrist_image_size)
                outputs = {"main_tokens": tokens, "main_fine": fine, "wrist_tokens": policy.wrist.patch_tokens(wrist)}
                if not arrays:
                    arrays = {name: np.lib.format.open_memmap(place / f"{name}.npy", mode="w+", dtype=np.float16,
                                                              shape=(total, *value.shape[1:]))
                              for name, value in outputs.items()}
                rows = slice(start + span.start, start + span.stop)
                for name, value in outputs.items():
                    arrays[name][rows] = value.numpy().astype(np.float16)
        for array in arrays.values():
            array.flush()
        np.save(place / "offsets.npy", offsets)
    finally:
        policy.train(was_training)


def _views(frames: np.ndarray, size: int) -> torch.Tensor:
    """(n, H, W, 3) uint8 frames -> (n, 3, size, size) float in [0, 1], resized as the batches are."""
    return torch.stack([image_tensor(frame, size, "cached frame") for frame in frames])
