"""An `Episode` made ready for the LeRobot v3.0 writer in whichever process produced it.

The heavy part of writing an episode is encoding its camera frames; done in the writer's process
it runs on one core while the conversion workers wait. `EpisodeEncoder` (small and picklable,
made by `DatasetWriter.encoder()`) encodes each camera into a single-episode mp4 clip and counts
the frames' pixel statistics where it is called, and returns an `EncodedEpisode`: joint arrays,
clip file names and histograms, cheap to send between processes. The writer then joins the clips
into its per-camera files without re-encoding (`video.VideoJoiner`).

A clip can also be written frame by frame (`EpisodeEncoder.clip`), as the rosbag2 converter
decodes them: a long episode's frames then never sit in memory together. Both ways give the
same clip and the same statistics (one encoder setting; histograms add up).
"""
from __future__ import annotations

import contextlib
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_core.data.episode import Episode, EpisodeError
from vla_core.data.stats import ImageStats
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


class ClipWriter:
    """One camera's frames of one episode, encoded into a clip and counted as they arrive."""

    def __init__(self, path: Path, fps: float, width: int, height: int, codec: str, crf: int) -> None:
        # PyAV is imported by the process that encodes, once it has read its bag's stamps: `vla
        # convert` makes its encoder before its workers start, and their first read need not wait
        from vla_core.data.video import VideoEncoder

        self.path, self.width, self.height = path, width, height
        self._encoder = VideoEncoder(path, fps, width, height, codec, crf)
        self._stats = ImageStats()

    def write(self, frames: np.ndarray) -> None:
        """Append (N, height, width, 3) uint8 RGB frames."""
        self._encoder.write(frames)
        self._stats.update(frames)

    def write_image(self, image: np.ndarray, repeat: int = 1) -> None:
        """Append one (height, width, 3) uint8 RGB image `repeat` times, converted and counted once."""
        self._encoder.write_image(image, repeat)
        self._stats.update(image[None], repeat)

    def close(self) -> CameraClip:
        self._encoder.close()
        return CameraClip(self.path, self._encoder.frames, self.width, self.height, self._stats)

    def abort(self) -> None:
        """Close and delete the clip (an episode that was skipped part way)."""
        with contextlib.suppress(Exception):  # the clip is thrown away; an encoder that fails to flush does not matter
            self._encoder.close()
        self.path.unlink(missing_ok=True)


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
        """Encode an episode whose frames are in memory."""
        self.check(episode)
        clips = {}
        for camera in self.spec.cameras:
            frames = episode.images[camera.name]
            writer = self.clip(camera.name, frames.shape[2], frames.shape[1])
            try:
                writer.write(frames)
            finally:
                clips[camera.name] = writer.close()
        return self.encoded(episode, clips)

    def clip(self, camera: str, width: int, height: int) -> ClipWriter:
        """A clip for one camera of one episode, to be written frame by frame."""
        # a unique name among the episodes other processes encode beside this one
        return ClipWriter(self.clip_dir / f"{uuid.uuid4().hex}-{camera}.mp4", self.fps, width, height,
                          self.codec, self.crf)

    def encoded(self, episode: Episode, clips: dict[str, CameraClip]) -> EncodedEpisode:
        """The episode's tables with its cameras' clips; EpisodeError where a clip's frames do not match."""
        for camera in self.spec.cameras:
            clip = clips.get(camera.name)
            if clip is None or clip.frames != len(episode):
                raise EpisodeError(f"episode {episode.name!r}: camera {camera.name!r} has "
                                   f"{clip.frames if clip else 0} encoded frame(s), the episode {len(episode)}")
        return EncodedEpisode(name=episode.name, task=episode.task, state=episode.state, action=episode.action,
                              clips=clips, success=episode.success, metadata=episode.metadata)

    def check(self, episode: Episode, images: bool = True) -> None:
        """EpisodeError unless the episode fits the profile and sits on the dataset's fps grid
        (`images=False`: its frames are still to come, through `clip`)."""
        episode.validate(self.spec, images=images)
        if not math.isclose(episode.fps, self.fps, rel_tol=1e-9):
            raise EpisodeError(f"episode {episode.name!r} is at {episode.fps} fps, the dataset at {self.fps}")
        grid = np.arange(len(episode)) / self.fps
        drift = np.abs(episode.timestamps - episode.timestamps[0] - grid).max()
        if drift > GRID_TOLERANCE / self.fps:
            raise EpisodeError(f"episode {episode.name!r}: timestamps leave the {self.fps:g} fps grid by up to "
                               f"{drift * 1e3:.1f} ms (at most {GRID_TOLERANCE / self.fps * 1e3:.1f} ms expected)")
