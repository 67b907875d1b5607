"""The training data of a run: sources loaded, episodes split into training and held-out, chunks
prepared per episode, and a map-style torch Dataset whose items are single-sample batches.

Soft prompts: every dataset trains the prompt of its embodiment, or the prompt the source names
(X-VLA's prompt per data source). A named prompt is registered in the policy as an embodiment of
that name with the same profile, so at run time the robot is driven with that name.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_core.data.episode import Episode
from vla_core.embodiment import EmbodimentSpec
from vla_core.kinematics import RobotKinematics
from vla_core.model.configuration import PolicyConfig
from vla_core.normalization import EmbodimentNormalizers
from vla_core.training.config import DataSource
from vla_core.training.mixture import Key
from vla_core.training.samples import (
    EpisodeChunks,
    fit_normalizers,
    merge_batches,
    sample_batch,
)


def load_source(source: DataSource, config: PolicyConfig | None = None) -> tuple[list[Episode], EmbodimentSpec]:
    """The episodes of a LeRobot v3.0 dataset written by vla_ros (vla_core.data.lerobot_v3), and its
    embodiment profile with the action space to train in: the source's, else the one the dataset
    names. With `config`, frames are resized to the policy's image sizes as they are decoded
    (memory stays small), and not decoded at all for a privileged_object_pose policy (it reads none)."""
    from vla_core.data.lerobot_v3 import load_episodes, read_embodiment, read_info

    if not Path(source.path).is_dir():
        raise FileNotFoundError(f"dataset {source.path} does not exist (expected a LeRobot v3.0 dataset directory)")
    info = read_info(Path(source.path))
    profile = read_embodiment(Path(source.path), info)
    action_space = source.action_space or info["vla_ros"].get("action_space", profile.action_space)
    profile = dataclasses.replace(profile, action_space=action_space)
    images = config is None or not config.privileged_object_pose
    sizes = None
    if config is not None and images:
        sizes = {camera.name: config.image_size if camera.role == "main" else config.wrist_image_size
                 for camera in profile.cameras}
    episodes = load_episodes(Path(source.path), image_size=sizes, with_images=images)
    if not episodes:
        raise ValueError(f"dataset {source.path} holds no episodes")
    return episodes, profile


@dataclass
class TrainingData:
    """Prepared chunks of every dataset, split into training and held-out episodes."""

    train: list[list[EpisodeChunks]]  # per dataset
    held_out: list[list[EpisodeChunks]]
    weights: list[float]
    specs: dict[str, EmbodimentSpec]  # prompt name -> profile registered under that name

    @classmethod
    def build(cls, datasets: Sequence[Sequence[Episode]], sources: Sequence[DataSource],
              spec_for: Callable[[str, EmbodimentSpec | None], EmbodimentSpec], held_out_episodes: int, seed: int,
              profiles: Sequence[EmbodimentSpec | None] | None = None, images: bool = True) -> TrainingData:
        """`spec_for(name, profile)`: the profile to train embodiment `name` with, given the one the
        dataset carries (`profiles[d]`, None for in-memory episodes); `images=False` for a policy
        that reads no view (the episodes need not carry frames)."""
        if len(datasets) != len(sources) or not datasets:
            raise ValueError(f"{len(datasets)} loaded datasets for {len(sources)} sources")
        profiles = list(profiles) if profiles is not None else [None] * len(datasets)
        kinematics: dict[str, RobotKinematics] = {}
        specs: dict[str, EmbodimentSpec] = {}
        train, held_out = [], []
        for d, (episodes, source) in enumerate(zip(datasets, sources)):
            if not episodes:
                raise ValueError(f"dataset {d} ({source.path}) holds no episodes")
            names = {episode.embodiment for episode in episodes}
            if len(names) != 1:
                raise ValueError(f"dataset {d} ({source.path}) mixes embodiments {sorted(names)}; one per dataset")
            profile = spec_for(names.pop(), profiles[d])
            for episode in episodes:
                episode.validate(profile, images)
            prompt = source.prompt or profile.name
            spec = dataclasses.replace(profile, name=prompt)
            if specs.setdefault(prompt, spec) != spec:
                raise ValueError(f"prompt {prompt!r} is used by datasets of different embodiments")
            if profile.name not in kinematics:
                kinematics[profile.name] = RobotKinematics(profile)
            chunks = [EpisodeChunks.build(episode, spec, kinematics[profile.name]) for episode in episodes]
            order = np.random.default_rng([seed, d]).permutation(len(chunks))
            kept = len(chunks) - min(held_out_episodes, len(chunks) - 1)  # keep one episode to train on
            train.append([chunks[i] for i in order[:kept]])
            held_out.append([chunks[i] for i in order[kept:]])
        return cls(train, held_out, [source.weight for source in sources], specs)

    def attach_object_poses(self) -> None:
        """Give every episode the named cube's true pose per frame, replayed from its seed in the
        simulation (vla_core.sim.replay): the input of a privileged_object_pose policy."""
        from vla_core.sim.replay import replay_all

        for dataset in (*self.train, *self.held_out):
            if not dataset:
                continue
            robot = dataset[0].episode.embodiment  # the simulated robot, whatever prompt name trains it
            poses = replay_all([chunks.episode for chunks in dataset], dataclasses.replace(dataset[0].spec, name=robot))
            for chunks, episode_poses in zip(dataset, poses):
                chunks.object_poses = episode_poses

    def episode_lengths(self) -> list[list[int]]:
        return [[len(chunks) for chunks in dataset] for dataset in self.train]

    def fit_normalizers(self, horizon: int, max_chunks: int,
                        names: Sequence[str] | None = None) -> dict[str, EmbodimentNormalizers]:
        """Statistics per prompt name (all, or `names`), from its training episodes only."""
        return {name: fit_normalizers([c for dataset in self.train for c in dataset if c.spec.name == name],
                                      horizon, max_chunks)
                for name in (self.specs if names is None else names)}


class ChunkDataset(torch.utils.data.Dataset):
    """Items are (dataset, episode, frame) keys -> single-sample batch dicts; `collate` merges them."""

    def __init__(self, config: PolicyConfig, datasets: Sequence[Sequence[EpisodeChunks]],
                 normalizers: dict[str, EmbodimentNormalizers]) -> None:
        self.config, self.datasets, self.normalizers = config, datasets, normalizers

    def __len__(self) -> int:
        return sum(len(chunks) for dataset in self.datasets for chunks in dataset)

    def __getitem__(self, key: Key) -> dict:
        dataset, episode, frame = key
        chunks = self.datasets[dataset][episode]
        return sample_batch(self.config, chunks, frame, self.normalizers[chunks.spec.name])

    @staticmethod
    def collate(items: Sequence[dict]) -> dict:
        return merge_batches(items)
