"""Episodes as bag directories: start, write, flush, stop, discard, and the reasons to refuse a start.

One episode is open at a time, in `<output_dir>/<episode_id>/`. Topics are registered once
(when the node subscribes) and every registered topic gets a connection in every episode's bag,
so an episode where a camera stayed silent still says so (a topic with 0 messages). Messages
that arrive while no episode is open are dropped: the recorder records episodes, not the
time between them.

All methods take one lock, so the node may call them from any executor thread. `flush` holds it
only to push the buffered messages into the file; the fsync, which waits for the disk, runs
outside it, so a camera callback writing meanwhile is never held up by the disk.
"""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.interfaces import Qos

from vla_core.recording.bag_writer import RosbagsBagWriter, open_bag_writer
from vla_core.recording.durable_files import fsync_path
from vla_core.recording.episode_metadata import RECORDING_MARKER, EpisodeInfo, new_episode_id, write_marker
from vla_core.recording.message_definitions import MessageDefinitions

MEBIBYTE = 1024 * 1024


class RecordingRefused(RuntimeError):
    """A start, stop or discard that cannot be done now; the message says why."""


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    msgtype: str
    qos: tuple[Qos, ...] = ()


@dataclass
class OpenEpisode:
    info: EpisodeInfo
    path: Path
    writer: RosbagsBagWriter
    counts: dict[str, int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())

    @property
    def duration(self) -> float:
        return 0.0 if self.first_ns is None else (self.last_ns - self.first_ns) / 1e9


@dataclass(frozen=True)
class EpisodeSummary:
    info: EpisodeInfo
    path: Path
    counts: dict[str, int]
    message_count: int
    duration: float  # seconds between the first and the last message's receive time


class EpisodeRecorder:
    def __init__(self, output_dir: Path, embodiment: str, min_free_mib: float, backend: str = "auto",
                 definitions: MessageDefinitions | None = None) -> None:
        self.output_dir = Path(output_dir).expanduser()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.embodiment = embodiment
        self.min_free_mib = min_free_mib
        self.backend = backend
        self.definitions = definitions or MessageDefinitions()
        self._topics: dict[str, TopicSpec] = {}
        self._episode: OpenEpisode | None = None
        self._lock = threading.Lock()

    # ---- state ----------------------------------------------------------------------------
    @property
    def episode(self) -> OpenEpisode | None:
        return self._episode

    @property
    def topics(self) -> dict[str, TopicSpec]:
        return dict(self._topics)

    def free_mib(self) -> float:
        return shutil.disk_usage(self.output_dir).free / MEBIBYTE

    # ---- topics and messages --------------------------------------------------------------
    def register_topic(self, spec: TopicSpec) -> None:
        """Record `spec.topic` from now on; raises UnknownMessageType for a type without a definition."""
        self.definitions.definition(spec.msgtype)
        with self._lock:
            self._topics[spec.topic] = spec
            if self._episode is not None:
                self._episode.writer.add_topic(spec.topic, spec.msgtype, list(spec.qos))
                self._episode.counts[spec.topic] = 0

    def write(self, topic: str, receive_time_ns: int, data: bytes) -> bool:
        """Write one serialized message to the open episode; False when none is open."""
        with self._lock:
            episode = self._episode
            if episode is None or topic not in episode.counts:
                return False
            episode.writer.write(topic, receive_time_ns, data)
            episode.counts[topic] += 1
            episode.first_ns = receive_time_ns if episode.first_ns is None else min(episode.first_ns, receive_time_ns)
            episode.last_ns = receive_time_ns if episode.last_ns is None else max(episode.last_ns, receive_time_ns)
            return True

    def flush(self) -> None:
        """Put everything written so far into the file and onto the disk."""
        with self._lock:
            if self._episode is None:
                return
            # a duplicate keeps the file open for the fsync even if stop() closes the bag meanwhile
            duplicate = os.dup(self._episode.writer.push())
        try:
            os.fsync(duplicate)
        finally:
            os.close(duplicate)

    # ---- episodes -------------------------------------------------------------------------
    def start(self, instruction: str, operator_notes: str = "") -> OpenEpisode:
        with self._lock:
            if self._episode is not None:
                raise RecordingRefused(f"already recording episode {self._episode.info.episode_id}: "
                                       "stop or discard it first")
            if not instruction.strip():
                raise RecordingRefused("the instruction is empty: every episode needs its task in words")
            free = self.free_mib()
            if free < self.min_free_mib:
                raise RecordingRefused(f"only {free:.0f} MiB free in {self.output_dir}, below the "
                                       f"min_free_disk_mb limit of {self.min_free_mib:.0f} MiB")
            episode_id = new_episode_id()
            path = self.output_dir / episode_id
            info = EpisodeInfo(episode_id, instruction.strip(), self.embodiment, operator_notes.strip())
            writer = open_bag_writer(path, self.definitions, self.backend)
            write_marker(path, info)  # before the first message: a crash from here on is recoverable
            episode = OpenEpisode(info, path, writer)
            for spec in self._topics.values():
                writer.add_topic(spec.topic, spec.msgtype, list(spec.qos))
                episode.counts[spec.topic] = 0
            self._episode = episode
            return episode

    def stop(self, success: bool, operator_notes: str = "") -> EpisodeSummary:
        """Close the open episode; when this returns, the bag and its metadata are on disk."""
        with self._lock:
            episode = self._require_episode("stop")
            info = episode.info.stopped(success, operator_notes)
            write_marker(episode.path, info)  # the verdict survives a crash during close
            episode.writer.close(info.custom_data())
            (episode.path / RECORDING_MARKER).unlink()
            fsync_path(episode.path)
            self._episode = None
            return EpisodeSummary(info, episode.path, dict(episode.counts), episode.message_count, episode.duration)

    def discard(self) -> EpisodeInfo:
        """Abort the open episode and delete its directory."""
        with self._lock:
            episode = self._require_episode("discard")
            episode.writer.abort()
            shutil.rmtree(episode.path)
            fsync_path(self.output_dir)
            self._episode = None
            return episode.info

    def _require_episode(self, action: str) -> OpenEpisode:
        if self._episode is None:
            raise RecordingRefused(f"no episode is being recorded: nothing to {action}")
        return self._episode
