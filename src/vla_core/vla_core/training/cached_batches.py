"""Training batches read from tables instead of built per sample: the frozen-stem stage's data path.

Once the stems are frozen (vla_core.training.feature_cache) a step costs the expert alone, and
building each sample as `sample_batch` does (an Observation, image tensors, one chunk encoded in
the action space) would cost more than the network. So every training frame's proprioception and
chunk targets are computed once, with the same functions `sample_batch` uses, into arrays, and a
batch is a gather over them and over the cached stem features.

The batch has the keys `VLAPolicy.forward` reads, with `main_tokens`, `main_fine` and
`wrist_tokens` in place of the images; image augmentation does not apply to it (the features are
those of the unaugmented frames). A `privileged_object_pose` policy reads no view at all: its
batches come from the tables alone, with the object pose in place of the features.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vla_core.model.batching import object_pose_features, state_features
from vla_core.model.configuration import PolicyConfig
from vla_core.normalization import EmbodimentNormalizers
from vla_core.training.feature_cache import FeatureCache
from vla_core.training.mixture import Key
from vla_core.training.samples import EpisodeChunks, chunk_targets


@dataclass
class FrameTable:
    """One dataset's per-frame inputs and targets, episodes back to back."""

    state: np.ndarray  # (F, state_features) float32
    actions: np.ndarray  # (F, H, K_max) float32, normalised
    action_mask: np.ndarray  # (F, H, K_max) bool
    offsets: np.ndarray  # (E + 1,)
    texts: list[str]  # per episode, in the embodiment's text prompt
    embodiment: str
    wrist_valid: np.ndarray  # (max_wrist_views,) bool
    object_pose: np.ndarray | None = None  # (F, OBJECT_POSE_FEATURES) float32, privileged policies only

    @classmethod
    def build(cls, config: PolicyConfig, episodes: Sequence[EpisodeChunks],
              normalizers: EmbodimentNormalizers) -> FrameTable:
        spec = episodes[0].spec
        states, actions, masks, poses = [], [], [], []
        for chunks in episodes:
            for frame in range(len(chunks)):
                observation = chunks.observation(frame)
                states.append(state_features(config, spec, normalizers, observation).numpy())
                if config.privileged_object_pose:
                    poses.append(object_pose_features(spec, observation))
                rows, mask = chunk_targets(config, chunks, frame, normalizers)
                actions.append(rows)
                masks.append(mask)
        wrist_valid = np.zeros(config.max_wrist_views, dtype=bool)
        wrist_valid[: len(spec.wrist_cameras)] = True
        return cls(np.stack(states), np.stack(actions), np.stack(masks),
                   np.concatenate([[0], np.cumsum([len(c) for c in episodes])]).astype(np.int64),
                   [spec.text_prompt(chunks.episode.task) for chunks in episodes], spec.name, wrist_valid,
                   np.stack(poses).astype(np.float32) if poses else None)


class CachedSamples:
    """Batches for (dataset, episode, frame) keys from frame tables and a feature cache (None for
    a privileged_object_pose policy, which reads no view)."""

    def __init__(self, config: PolicyConfig, datasets: Sequence[Sequence[EpisodeChunks]],
                 normalizers: Mapping[str, EmbodimentNormalizers], cache: FeatureCache | None) -> None:
        if cache is not None and len(cache.datasets) != len(datasets):
            raise ValueError(f"the feature cache holds {len(cache.datasets)} datasets, the run trains on {len(datasets)}")
        self.config, self.cache = config, cache
        self.tables = [FrameTable.build(config, episodes, normalizers[episodes[0].spec.name]) for episodes in datasets]

    def batch(self, keys: Sequence[Key]) -> dict:
        """The batch of `keys`, in their order."""
        parts: dict[str, list[torch.Tensor]] = {}
        texts, embodiments = [], []
        for dataset, episode, frame in keys:
            table = self.tables[dataset]
            row = int(table.offsets[episode]) + frame
            sample = {"state": torch.from_numpy(table.state[row]),
                      "actions": torch.from_numpy(table.actions[row]),
                      "action_mask": torch.from_numpy(table.action_mask[row]),
                      "wrist_valid": torch.from_numpy(table.wrist_valid)}
            if table.object_pose is not None:
                sample["object_pose"] = torch.from_numpy(table.object_pose[row])
            if self.cache is not None:
                sample.update({name: value[0] for name, value in
                               self.cache.batch(dataset, episode, np.array([frame]), self.config.history_length).items()})
            for name, value in sample.items():
                parts.setdefault(name, []).append(value)
            texts.append(table.texts[episode])
            embodiments.append(table.embodiment)
        return {**{name: torch.stack(values) for name, values in parts.items()}, "texts": texts,
                "embodiments": embodiments}
