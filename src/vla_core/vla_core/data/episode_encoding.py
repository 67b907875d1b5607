"""An `Episode` made ready for the LeRobot v3.0 writer in whichever process produced it.

The heavy part of writing an episode is encoding its camera frames; done in the writer's process
it runs on one core while the conversion workers wait. `EpisodeEncoder` (small and picklable,
made by `DatasetWriter.encoder()`) encodes each camera into a single-episode mp4 clip and counts
the frames' pixel statistics where it is called, and returns an `EncodedEpisode`: joint arrays,
clip file names and histograms, cheap to send between processes. The writer then joins the clips
into its per-camera files without re-encoding (`video.VideoJoiner`).
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_core.data.episode import Episode, EpisodeError
from vla_core.data.stats import ImageStats
from vla_core.data.video import VideoEncoder
from vla_core.embodiment import EmbodimentSpec

# a timestamp may sit this far (in frame periods) from its place on the fps grid
GRID_TOLERANCE = 0.25


@dataclass
class CameraClip:
    """One camera's frames of one episode, encoded; `stats` counts the same frames' pixels."""

    path: Path
    frames: int
    width: int
    height: int
    stats: ImageStats


@dataclass
class EncodedEpisode:
    """What the writer needs of an episode once its frames are encoded (T frames, J joints)."""

    name: str
    task: str
    state: np.ndarray  # (T, J)
    action: np.ndarray  # (T, J) absolute joint targets
    clips: dict[str, CameraClip]  # camera name -> clip
    success: bool | None = None
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.state)


@dataclass(frozen=True)
class EpisodeEncoder:
    """Checks an episode against the dataset's profile and rate, and encodes its cameras into clips
    in `clip_dir` (the writer deletes each clip once joined)."""

    spec: EmbodimentSpec
    fps: float
    clip_dir: Path
    codec: str = "libx264"
    crf: int = 23

    def __call__(self, episode: Episode) -> EncodedEpisode:
        self.check(episode)
        prefix = uuid.uuid4().hex  # unique among the episodes other processes encode beside this one
        clips = {}
        for camera in self.spec.cameras:
            frames = episode.images[camera.name]
            path = self.clip_dir / f"{prefix}-{camera.name}.mp4"
            encoder = VideoEncoder(path, self.fps, frames.shape[2], frames.shape[1], self.codec, self.crf)
            try:
                encoder.write(frames)
            finally:
                encoder.close()
            stats = ImageStats()
            stats.update(frames)
            clips[camera.name] = CameraClip(path, len(frames), frames.shape[2], frames.shape[1], stats)
        return EncodedEpisode(name=episode.name, task=episode.task, state=episode.state, action=episode.action,
                              clips=clips, success=episode.success, metadata=episode.metadata)

    def check(self, episode: Episode) -> None:
        """EpisodeError unless the episode fits the profile and sits on the dataset's fps grid."""
        episode.validate(self.spec)
        if not math.isclose(episode.fps, self.fps, rel_tol=1e-9):
            raise EpisodeError(f"episode {episode.name!r} is at {episode.fps} fps, the dataset at {self.fps}")
        grid = np.arange(len(episode)) / self.fps
        drift = np.abs(episode.timestamps - episode.timestamps[0] - grid).max()
        if drift > GRID_TOLERANCE / self.fps:
            raise EpisodeError(f"episode {episode.name!r}: timestamps leave the {self.fps:g} fps grid by up to "
                               f"{drift * 1e3:.1f} ms (at most {GRID_TOLERANCE / self.fps * 1e3:.1f} ms expected)")
