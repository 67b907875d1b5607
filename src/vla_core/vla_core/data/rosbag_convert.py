"""rosbag2 demonstrations -> `Episode` objects -> one LeRobot v3.0 dataset.

One bag directory is one episode. Its streams (cameras, joint states, the teleoperator's
command) are put on the dataset's fixed-rate timeline: it starts when every sensor stream has
begun and ends when the first one stops; sensors take the nearest stamp, the command the latest
one at or before the frame. A frame where a stream's nearest sample is more than `max_skew`
away (or no command has arrived yet) is a gap. Gaps at the start and end are trimmed; an
episode with gaps inside is skipped, never filled in, and both are counted in the summary.

The instruction, success flag, operator notes and episode id come from the bag's metadata.yaml
`custom_data` (keys `vla_ros.*`, as the vla_ros recorder writes them). Bags are converted in a
process pool, each worker reading one bag and encoding its videos into clips; the parent joins
the clips and writes the tables in bag order.

Where the time goes, and why it is spent this way (issue 36):
- pass 1 reads stamps and joint values from the serialized bytes (`cdr_fields`), many messages
  at once, instead of deserialising every message in Python; of camera messages only the header
  stamp is read. From an indexed MCAP file each topic's messages come as arrays (`mcap_index`:
  the joint messages' bytes, a camera message's 12 head bytes), with no Python step per message;
- pass 2 hands each camera's picked messages to its own thread, which decodes (the pixels read in
  place from the message bytes; simplejpeg and Pillow release the GIL), resizes and encodes (PyAV
  releases it) frame by frame in timeline order, so one bag
  uses as many cores as it has cameras and no episode's frames are ever held in memory at once:
  memory stays bounded however long the recording;
- the parent imports the dataset writer (pyarrow, PyAV, Pinocchio) only after the
  workers have started reading.
"""
from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vla_core.data.bag_reader import Bag, BagError, IndexedTopic, deserialize, is_bag, open_bag
from vla_core.data.cdr_fields import (
    HEADER_STAMP_BYTES,
    JointValues,
    grouped_joint_values,
    header_stamp,
    image_fields,
    joint_values,
)
from vla_core.data.convert_config import (
    COMMAND_TYPES,
    IMAGE_TYPES,
    JOINT_STATE_TYPES,
    ConvertConfig,
    match_topic,
)
from vla_core.data.episode import Episode
from vla_core.data.mcap_index import Located
from vla_core.data.resample import frame_times, gap_runs, latest, nearest
from vla_core.embodiment import EmbodimentSpec
from vla_core.images import message_to_rgb, resize_rgb
from vla_core.recording.episode_metadata import (
    EMBODIMENT,
    EPISODE_ID,
    INSTRUCTION,
    OPERATOR_NOTES,
    SUCCESS,
)

if TYPE_CHECKING:
    from vla_core.data.episode_encoding import (
        ClipWriter,
        EncodedEpisode,
        EpisodeEncoder,
    )

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")
STAGES = ("read", "resample", "decode", "encode", "write")  # where a conversion's time goes (Summary.stages)
JOINT_BLOCK = 4096  # joint messages read into arrays at a time: memory stays bounded on long bags
LANE_QUEUE = 8  # camera messages waiting for their decoding thread (a few MB at most)


class EpisodeSkipped(ValueError):
    """A bag that yields no episode; the message is the reason shown in the summary."""


@dataclass
class EpisodeReport:
    bag: str
    name: str
    kept: bool
    reason: str = ""
    frames: int = 0
    recorded_s: float = 0.0
    gap_frames: int = 0  # frames trimmed at the edges or found inside (then the episode is skipped)
    matched: dict[str, str] = field(default_factory=dict)  # configured name -> bag topic
    action_source: str = ""  # where the episode's actions came from, as in its metadata
    seconds: dict[str, float] = field(default_factory=dict)  # stage (STAGES, and 'decode.<camera>', 'encode.<camera>') -> CPU seconds of the threads doing it
    read_at: float = 0.0  # CLOCK_BOOTTIME seconds when the bag was opened (start-up: process start to first read)
    read_cpu: float = 0.0  # CPU seconds its process had used then (a pool worker counts from its fork)


@dataclass
class Summary:
    output: Path
    reports: list[EpisodeReport]
    seconds: float
    launch_cpu: float = 0.0  # CPU seconds the converting process had used when its pool workers were forked

    @property
    def kept(self) -> list[EpisodeReport]:
        return [report for report in self.reports if report.kept]

    @property
    def skipped(self) -> list[EpisodeReport]:
        return [report for report in self.reports if not report.kept]

    @property
    def frames(self) -> int:
        return sum(report.frames for report in self.kept)

    @property
    def recorded_s(self) -> float:
        return sum(report.recorded_s for report in self.kept)

    @property
    def gap_frames(self) -> int:
        return sum(report.gap_frames for report in self.reports)

    @property
    def stages(self) -> dict[str, float]:
        """CPU seconds per stage, summed over every bag, thread and process: where the work goes,
        whatever else the machine runs (stages overlap in time; x264 and Pillow count in the
        thread that calls them). Then each camera's share of decode and encode ('decode.<camera>')."""
        keys = [*STAGES, *sorted({key for report in self.reports for key in report.seconds if "." in key})]
        return {key: sum(report.seconds.get(key, 0.0) for report in self.reports) for key in keys}

    @property
    def first_read_at(self) -> float:
        """CLOCK_BOOTTIME seconds when the first bag was opened (0.0 when none was)."""
        return min((report.read_at for report in self.reports if report.read_at), default=0.0)

    @property
    def first_read_cpu(self) -> float:
        """CPU seconds spent before the first bag was opened (this process's up to the fork, then the
        worker's): start-up that does not depend on what else the machine runs."""
        opened = [report for report in self.reports if report.read_at]
        return self.launch_cpu + min(opened, key=lambda report: report.read_at).read_cpu if opened else 0.0

    def text(self) -> str:
        speed = self.recorded_s / self.seconds if self.seconds > 0 else float("inf")
        lines = [(f"{len(self.kept)} episode(s) kept, {len(self.skipped)} skipped; {self.frames} frames "
                  f"({self.recorded_s:.1f} s recorded), {self.gap_frames} gap frame(s); "
                  f"{self.seconds:.1f} s, {speed:.1f}x real time -> {self.output}")]
        for report in self.kept:
            lines.append(f"  kept    {report.name}: {report.frames} frames, {report.gap_frames} gap frame(s) trimmed "
                         f"({', '.join(f'{k} <- {v}' for k, v in report.matched.items())}); "
                         f"actions <- {report.action_source}")
        for report in self.skipped:
            lines.append(f"  skipped {report.bag}: {report.reason}")
        return "\n".join(lines)


# ---- topics ----------------------------------------------------------------------------------
def resolve_topics(bag: Bag, spec: EmbodimentSpec, config: ConvertConfig) -> dict[str, str]:
    """Bag topic per role ('camera:<name>', 'joint_states', 'command' when present)."""
    topics = bag.topics
    available = sorted(topics)
    wanted: list[tuple[str, str, tuple[str, ...], bool]] = [
        (f"camera:{name}", topic, IMAGE_TYPES, True) for name, topic in config.cameras.items()]
    wanted.append(("joint_states", config.joint_state_topic, JOINT_STATE_TYPES, True))
    if config.action_source != "next_state":
        wanted.append(("command", config.command_topic, COMMAND_TYPES, config.action_source == "command"))
    matched: dict[str, str] = {}
    problems: list[str] = []
    for role, name, types, required in wanted:
        found, candidates = match_topic(name, available, config.namespace)
        if found is None and types is IMAGE_TYPES:
            found, candidates = match_topic(f"{name.rstrip('/')}/compressed", available, config.namespace)
        if found is not None and topics[found].msgtype not in types:
            problems.append(f"{role} topic {found} is {topics[found].msgtype}, expected {' or '.join(types)}")
        elif found is not None:
            matched[role] = found
        elif required:
            hint = f" (several match: {candidates}; pick one with --namespace)" if candidates else ""
            problems.append(f"{role} <- '{name}' ({' or '.join(types)}){hint}")
    if problems:
        raise BagError(f"{bag.path}: needed topic(s) not found or of the wrong type: {'; '.join(problems)}. "
                       f"The bag has: {bag.describe_topics()}")
    return matched


# ---- pass 1: stamps and joint values ---------------------------------------------------------
@dataclass
class _Stream:
    stamps: list[int] = field(default_factory=list)  # nanoseconds
    rows: list[np.ndarray] = field(default_factory=list)  # joint streams only: (n, J) blocks
    ordinals: list[int] = field(default_factory=list)  # message number within its topic
    refused: int = 0
    note: str = ""

    def sorted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        order = np.argsort(np.asarray(self.stamps), kind="stable")
        stamps = np.asarray(self.stamps, dtype=np.int64)[order]
        ordinals = np.asarray(self.ordinals)[order]
        return stamps, ordinals, (np.concatenate(self.rows)[order] if self.rows else None)


def _stamp(msg: Any, received_ns: int, use_header: bool) -> int:
    """Nanoseconds: the header stamp, or the receive time where there is no header or it is zero."""
    header = getattr(msg, "header", None)
    if use_header and header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
    return received_ns


def _joint_row(names: Sequence[str], values: Sequence[float], index: dict[str, int], size: int) -> np.ndarray:
    """Values placed by joint name into the spec's order; NaN for joints the message lacks."""
    row = np.full(size, np.nan)
    for name, value in zip(names, values):
        if name in index:
            row[index[name]] = value
    return row


def _command_row(msg: Any, msgtype: str, index: dict[str, int], size: int) -> np.ndarray | None:
    if msgtype.endswith("JointTrajectory"):
        if not msg.points:
            return None
        return _joint_row(msg.joint_names, msg.points[0].positions, index, size)
    if msgtype.endswith("JointState"):
        return _joint_row(msg.name, msg.position, index, size)
    data = np.asarray(msg.data, dtype=np.float64)  # Float64MultiArray: the profile's joint order
    return data if data.shape == (size,) else None


@dataclass
class _JointBlock:
    """Joint messages of one topic waiting to be read together (`_read_joint_block`): their bytes one
    by one (`raws`), or as gathered from an indexed MCAP file (`groups`: per message length, the
    messages' positions in the block and their bytes as an (n, length) array)."""

    raws: list[bytes] = field(default_factory=list)
    received: list[int] | np.ndarray = field(default_factory=list)
    ordinals: list[int] | np.ndarray = field(default_factory=list)
    groups: list[tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.received)

    def raw(self, position: int) -> bytes:
        """The bytes of the block's message at `position`."""
        if self.groups is None:
            return self.raws[position]
        for positions, rows in self.groups:
            found = np.flatnonzero(positions == position)
            if found.size:
                return rows[found[0]].tobytes()
        raise IndexError(position)

    def values(self, msgtype: str) -> JointValues:
        return (joint_values(self.raws, msgtype) if self.groups is None
                else grouped_joint_values(self.groups, len(self), msgtype))


def _read_joint_block(block: _JointBlock, role: str, msgtype: str, stream: _Stream, spec: EmbodimentSpec,
                      use_header: bool) -> None:
    """Append a block's usable messages to `stream`, in message order, as the per-message rules say:
    a joint state lacking a profile joint (or carrying NaN for one) is refused, and a command
    carrying none of them or no trajectory point; the note describes the last refusal."""
    index = {name: i for i, name in enumerate(spec.joint_names)}
    size = len(index)
    count = len(block)
    rows = np.full((count, size), np.nan)
    usable = np.ones(count, bool)
    names_of: dict[int, Sequence[str]] = {}  # message -> its names, for the refusal note (deserialised ones)
    stamps = np.asarray(block.received, np.int64)
    vectorised = msgtype.endswith(("JointState", "JointTrajectory"))
    read = block.values(msgtype) if vectorised else None
    if read is not None:
        has_stamp = use_header & ((read.sec != 0) | (read.nanosec != 0))
        stamps = np.where(has_stamp, read.sec * 1_000_000_000 + read.nanosec, stamps)
        for positions, names, values in read.values:
            target: dict[int, int] = {}  # profile column -> message column; a repeated name: the last wins
            for column, name in enumerate(names):
                if name in index:
                    target[index[name]] = column
            for joint, column in target.items():
                rows[positions, joint] = values[:, column]
    for position in (read.fallback if read is not None else range(count)):
        msg = deserialize(block.raw(position), msgtype)
        stamps[position] = _stamp(msg, block.received[position], use_header)
        if role == "joint_states":
            rows[position] = _joint_row(msg.name, msg.position, index, size)
            names_of[position] = list(msg.name)
        else:
            row = _command_row(msg, msgtype, index, size)
            usable[position] = row is not None
            if row is not None:
                rows[position] = row
    usable &= ~np.isnan(rows).any(axis=1) if role == "joint_states" else ~np.isnan(rows).all(axis=1)
    if not usable.all():
        stream.refused += int((~usable).sum())
        last = int(np.flatnonzero(~usable)[-1])
        if role == "joint_states":
            lacking = [name for name, value in zip(spec.joint_names, rows[last]) if np.isnan(value)]
            names = names_of.get(last) or next(names for positions, names, _ in read.values if last in positions)
            stream.note = f"lacks {lacking} (has {list(names)})"
        else:
            stream.note = f"carries none of {list(spec.joint_names)} or no trajectory point"
    stream.stamps.extend(stamps[usable].tolist())
    stream.ordinals.extend(np.asarray(block.ordinals)[usable].tolist())
    if usable.any():
        stream.rows.append(rows[usable])


def _read_streams(bag: Bag, topics: dict[str, str], spec: EmbodimentSpec, config: ConvertConfig
                  ) -> dict[str, _Stream]:
    """Pass 1: every stream's stamps (and joint values), from the serialized bytes where it can."""
    indexed = bag.indexed_messages(set(topics.values()))
    if indexed is not None:
        return {role: _read_indexed_stream(indexed[topic], role, spec, config.stamps == "header")
                for role, topic in topics.items()}
    role_of = {topic: role for role, topic in topics.items()}
    streams = {role: _Stream() for role in topics}
    blocks = {role: _JointBlock() for role in topics if not role.startswith("camera:")}
    msgtypes: dict[str, str] = {}
    counts = dict.fromkeys(topics, 0)
    use_header = config.stamps == "header"
    cameras = frozenset(topic for role, topic in topics.items() if role.startswith("camera:"))
    for topic, received, raw, msgtype in bag.raw_messages(set(role_of), heads=cameras, head_bytes=HEADER_STAMP_BYTES):
        role = role_of[topic]
        ordinal = counts[role]
        counts[role] += 1
        block = blocks.get(role)
        if block is not None:  # joint states or command: read in blocks
            msgtypes[role] = msgtype
            block.raws.append(raw)
            block.received.append(received)
            block.ordinals.append(ordinal)
            if len(block.raws) >= JOINT_BLOCK:
                _read_joint_block(block, role, msgtype, streams[role], spec, use_header)
                blocks[role] = _JointBlock()
            continue
        # a camera: only its header stamp is needed here, not its pixels
        stamped = received
        if use_header:
            stamp = header_stamp(raw)
            if stamp is None:  # not little-endian CDR: deserialise it
                stamped = _stamp(deserialize(raw, msgtype), received, use_header)
            elif stamp[0] or stamp[1]:
                stamped = stamp[0] * 1_000_000_000 + stamp[1]
        streams[role].stamps.append(stamped)
        streams[role].ordinals.append(ordinal)
    for role, block in blocks.items():
        if block.raws:
            _read_joint_block(block, role, msgtypes[role], streams[role], spec, use_header)
    return streams


def _read_indexed_stream(parts: list[IndexedTopic], role: str, spec: EmbodimentSpec, use_header: bool) -> _Stream:
    """Pass 1 of one topic whose files are all indexed MCAP: the same stream as reading it message
    by message, but the bytes come as arrays (`IndexedMcap.gather`), so no Python step runs per
    message: a joint state topic at 500 Hz is 30 000 messages a minute. Of a camera message only
    its header stamp's 12 bytes are read."""
    stream = _Stream()
    ordinal = 0
    for part in parts:
        located = part.located
        for first in range(0, len(located.offset), JOINT_BLOCK):
            rows = located.subset(slice(first, first + JOINT_BLOCK))
            ordinals = ordinal + first + np.arange(len(rows.offset))
            if role.startswith("camera:"):
                _read_camera_stamps(part, rows, ordinals, stream, use_header)
                continue
            groups = [(np.flatnonzero(rows.length == length), part.file.gather(rows.offset[rows.length == length],
                                                                               int(length)))
                      for length in np.unique(rows.length)]
            block = _JointBlock(received=rows.log_time, ordinals=ordinals, groups=groups)
            _read_joint_block(block, role, part.msgtype, stream, spec, use_header)
        ordinal += len(located.offset)
    return stream


def _read_camera_stamps(part: IndexedTopic, rows: Located, ordinals: np.ndarray, stream: _Stream,
                        use_header: bool) -> None:
    """Append camera messages' stamps to `stream`: each header stamp (the receive time where it is
    zero, or with `use_header` off), read from 12 bytes per message; a message that is not
    little-endian CDR is read whole and deserialised."""
    stamps = rows.log_time.copy()
    if use_header:
        plain = rows.little_endian & (rows.length >= HEADER_STAMP_BYTES)
        heads = part.file.gather(rows.offset[plain], HEADER_STAMP_BYTES)
        sec = np.ascontiguousarray(heads[:, 4:8]).view("<i4")[:, 0].astype(np.int64)
        nanosec = np.ascontiguousarray(heads[:, 8:12]).view("<u4")[:, 0].astype(np.int64)
        stamps[plain] = np.where((sec != 0) | (nanosec != 0), sec * 1_000_000_000 + nanosec, stamps[plain])
        for position in np.flatnonzero(~plain).tolist():
            message = deserialize(part.file.message(int(rows.offset[position]), int(rows.length[position])),
                                  part.msgtype)
            stamps[position] = _stamp(message, int(rows.log_time[position]), use_header)
    stream.stamps.extend(stamps.tolist())
    stream.ordinals.extend(ordinals.tolist())


# ---- one bag -> one episode --------------------------------------------------------------------
def _custom(bag: Bag, key: str) -> str | None:
    """A metadata.yaml custom_data entry the recorder writes (keys: vla_core.recording.episode_metadata)."""
    value = bag.custom_data.get(key)
    return value if value not in (None, "") else None


def _success(value: str | None) -> bool | None:
    if value is None:
        return None
    word = value.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


@dataclass
class _Plan:
    """An episode before pass 2: its tables (`episode`, without images) and, per camera, its bag
    topic and which timeline positions each picked message (by number within its topic) fills."""

    episode: Episode
    cameras: dict[str, tuple[str, dict[int, list[int]]]]


def _plan_episode(bag: Bag, spec: EmbodimentSpec, config: ConvertConfig, report: EpisodeReport) -> _Plan:
    """Pass 1 and the timeline: everything of the episode but its camera frames."""
    recorded_embodiment = _custom(bag, EMBODIMENT)
    if recorded_embodiment is not None and recorded_embodiment != spec.name:
        raise EpisodeSkipped(f"recorded for embodiment {recorded_embodiment!r} (metadata.yaml custom_data "
                             f"{EMBODIMENT}), converting for {spec.name!r}")
    topics = resolve_topics(bag, spec, config)
    task = _custom(bag, INSTRUCTION) or config.task
    if task is None:
        raise EpisodeSkipped(f"no instruction: metadata.yaml custom_data has no {INSTRUCTION!r} "
                             "and no --task was given")
    report.matched = {role: topic for role, topic in topics.items()}
    started = time.thread_time()
    streams = _read_streams(bag, topics, spec, config)
    report.seconds["read"] = time.thread_time() - started
    started = time.thread_time()
    fallback = ""
    if "command" in topics and not streams["command"].stamps and config.action_source == "auto":
        # a recorder writes the command topic even when no teleoperator published on it
        fallback = f" (command topic {topics.pop('command')} has no usable messages)"
        del streams["command"], report.matched["command"]
    sensors = [role for role in topics if role != "command"]
    for role in topics:
        if not streams[role].stamps:
            detail = f": {streams[role].refused} message(s) refused, the last {streams[role].note}" if streams[role].refused else ""
            raise EpisodeSkipped(f"{role} topic {topics[role]} has no usable messages{detail}")
    sorted_streams = {role: streams[role].sorted() for role in topics}
    fps = float(config.fps)
    start = max(sorted_streams[role][0][0] for role in sensors)
    stop = min(sorted_streams[role][0][-1] for role in sensors)
    times = frame_times(start, stop, fps)
    if len(times) == 0:
        raise EpisodeSkipped(f"the streams never overlap in time ({', '.join(sensors)})")
    picks: dict[str, np.ndarray] = {}
    gaps = np.zeros(len(times), dtype=bool)
    per_stream: dict[str, int] = {}
    for role in topics:
        stamps = sorted_streams[role][0]
        if role == "command":
            picks[role] = latest(stamps, times)
            missing = picks[role] < 0
        else:
            picks[role], skew = nearest(stamps, times)
            missing = skew > config.max_skew * 1e9
        per_stream[role] = int(missing.sum())
        gaps |= missing
    runs = gap_runs(gaps)
    first = runs[0][1] if runs and runs[0][0] == 0 else 0
    last = runs[-1][0] if runs and runs[-1][1] == len(times) else len(times)
    report.gap_frames = int(gaps.sum())
    inner = [(a, b) for a, b in runs if a > 0 and b < len(times)]
    if inner:
        where = ", ".join(f"{a / fps:.2f}-{b / fps:.2f} s" for a, b in inner[:5])
        streams_text = ", ".join(f"{role}: {count}" for role, count in per_stream.items() if count)
        raise EpisodeSkipped(f"{sum(b - a for a, b in inner)} frame(s) in {len(inner)} gap(s) inside the episode "
                             f"(no sample within max_skew {config.max_skew} s; at {where}; gap frames per stream "
                             f"{streams_text}); not filled in")
    keep = slice(first, last)
    count = last - first
    if count < config.min_frames:
        raise EpisodeSkipped(f"{count} frame(s) after trimming gaps, fewer than min_frames {config.min_frames}")
    times = times[keep]
    state = sorted_streams["joint_states"][2][picks["joint_states"][keep]]
    next_state = np.concatenate([state[1:], state[-1:]])
    action, action_source = next_state, "next_state" + fallback
    if "command" in topics:
        command = sorted_streams["command"][2][picks["command"][keep]]
        action = np.where(np.isnan(command), next_state, command)
        uncommanded = [name for name, column in zip(spec.joint_names, command.T) if np.isnan(column).any()]
        action_source = "command" + (f" (next_state for {uncommanded})" if uncommanded else "")
    cameras: dict[str, tuple[str, dict[int, list[int]]]] = {}
    for role in topics:
        if role.startswith("camera:"):
            ordinals = sorted_streams[role][1][picks[role][keep]]
            positions: dict[int, list[int]] = {}
            for position, ordinal in enumerate(ordinals.tolist()):  # several where the camera dropped frames
                positions.setdefault(ordinal, []).append(position)
            cameras[role.split(":", 1)[1]] = (topics[role], positions)
    report.seconds["resample"] = time.thread_time() - started
    report.frames, report.recorded_s, report.action_source = count, count / fps, action_source
    metadata = {
        "bag": str(bag.path), "start_time_ns": int(times[0]), "topics": report.matched,
        "action_source": action_source, "stamps": config.stamps, "gap_frames_trimmed": report.gap_frames,
        "operator_notes": _custom(bag, OPERATOR_NOTES), "episode_id": _custom(bag, EPISODE_ID),
    }
    episode = Episode(name=report.name, embodiment=spec.name, task=task, fps=fps,
                      timestamps=(times - times[0]) * 1e-9, state=state, action=action, images={},
                      success=_success(_custom(bag, SUCCESS)),
                      metadata={key: value for key, value in metadata.items() if value is not None})
    return _Plan(episode, cameras)


# ---- pass 2: camera frames -------------------------------------------------------------------
class FrameSink(Protocol):
    """Where one camera's frames go, in timeline order: one (H, W, 3) uint8 image `repeat` times
    for as many frames in a row as the timeline picked it."""

    def write_image(self, image: np.ndarray, repeat: int = 1) -> None: ...


class _ArraySink:
    """Frames kept in memory (`convert_bag`, whose Episode holds them)."""

    def __init__(self, count: int, width: int, height: int) -> None:
        self.frames = np.zeros((count, height, width, 3), dtype=np.uint8)
        self.written = 0

    def write_image(self, image: np.ndarray, repeat: int = 1) -> None:
        self.frames[self.written:self.written + repeat] = image
        self.written += repeat


class _CameraLane(threading.Thread):
    """Decodes one camera's picked messages in its own thread and writes its frames to a sink in
    timeline order (a message picked for several frames is written for each)."""

    def __init__(self, camera: str, topic: str, width: int, height: int, positions: dict[int, list[int]],
                 sink: FrameSink) -> None:
        super().__init__(name=f"camera {camera}", daemon=True)
        self.camera, self.topic, self.width, self.height = camera, topic, width, height
        self.positions, self.sink = positions, sink
        self.frames = sum(len(where) for where in positions.values())
        self.written = 0
        self.queue: queue.Queue[tuple[int, int, bytes, str] | None] = queue.Queue(LANE_QUEUE)
        self.error: tuple[int, BaseException] | None = None  # (message's place in the bag, what went wrong)
        self.decode_s = self.encode_s = 0.0

    def run(self) -> None:
        pending: dict[int, np.ndarray] = {}  # frames decoded ahead of their turn (stamps out of bag order)
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the reader stops soon
            place, ordinal, raw, msgtype = item
            started = time.thread_time()
            try:
                message = image_fields(raw, msgtype) or deserialize(raw, msgtype)  # in place: no copy of the pixels
                image = resize_rgb(message_to_rgb(message), self.width, self.height)
            except ValueError as error:
                self.error = (place, EpisodeSkipped(f"camera {self.camera!r} on {self.topic}, message {ordinal}: "
                                                    f"{error}"))
                continue
            except Exception as error:  # noqa: BLE001 -- a damaged message: re-raised in the reading thread
                self.error = (place, error)
                continue
            decoded = time.thread_time()
            self.decode_s += decoded - started
            for position in self.positions[ordinal]:
                pending[position] = image
            try:
                while self.written in pending:
                    image = pending.pop(self.written)
                    repeat = 1
                    while pending.get(self.written + repeat) is image:  # a slower camera's frame, picked again
                        del pending[self.written + repeat]
                        repeat += 1
                    self.sink.write_image(image, repeat)
                    self.written += repeat
            except Exception as error:  # noqa: BLE001 -- an encoder failure: re-raised in the reading thread
                self.error = (place, error)
            self.encode_s += time.thread_time() - decoded


def _stream_frames(bag: Bag, plan: _Plan, spec: EmbodimentSpec, sinks: dict[str, FrameSink],
                   report: EpisodeReport) -> None:
    """Pass 2: read the bag's camera topics once; each picked message goes to its camera's thread."""
    cameras = {camera.name: camera for camera in spec.cameras}
    lanes = {topic: _CameraLane(name, topic, cameras[name].width, cameras[name].height, positions, sinks[name])
             for name, (topic, positions) in plan.cameras.items()}
    counts = dict.fromkeys(lanes, 0)
    started = time.thread_time()
    for lane in lanes.values():
        lane.start()
    try:
        for place, (topic, _, raw, msgtype) in enumerate(bag.raw_messages(set(lanes))):
            lane = lanes[topic]
            ordinal = counts[topic]
            counts[topic] += 1
            if ordinal in lane.positions and lane.error is None:
                lane.queue.put((place, ordinal, raw, msgtype))
            if any(lane.error is not None for lane in lanes.values()):
                break
    finally:
        for lane in lanes.values():
            lane.queue.put(None)
        for lane in lanes.values():
            lane.join()
    report.seconds["read"] = report.seconds.get("read", 0.0) + time.thread_time() - started
    report.seconds["decode"] = sum(lane.decode_s for lane in lanes.values())
    report.seconds["encode"] = sum(lane.encode_s for lane in lanes.values())
    for lane in lanes.values():
        report.seconds[f"decode.{lane.camera}"], report.seconds[f"encode.{lane.camera}"] = lane.decode_s, lane.encode_s
    errors = sorted((lane.error for lane in lanes.values() if lane.error is not None), key=lambda error: error[0])
    if errors:
        raise errors[0][1]
    for lane in lanes.values():
        if lane.written != lane.frames:
            raise EpisodeSkipped(f"camera {lane.camera!r} on {lane.topic}: {lane.written} of {lane.frames} frames "
                                 "found in the bag")


def _open_bag(path: Path, report: EpisodeReport) -> Bag:
    bag = open_bag(Path(path))
    report.read_at, report.read_cpu = time.clock_gettime(time.CLOCK_BOOTTIME), time.process_time()
    report.name = _custom(bag, EPISODE_ID) or report.name
    return bag


def _skip(report: EpisodeReport, error: Exception) -> EpisodeReport:
    """The report of a bag that gave no episode, with the reason the summary shows."""
    if isinstance(error, (EpisodeSkipped, BagError)):
        report.reason = str(error)
    else:  # a damaged bag surfaces as whatever its parser raises; the rest go on
        report.reason = f"unreadable ({type(error).__name__}: {error})"
    return report


def convert_bag(path: Path, spec: EmbodimentSpec, config: ConvertConfig) -> tuple[Episode | None, EpisodeReport]:
    """One bag -> (episode with its frames in memory, report); a bag that cannot give an episode
    gives (None, report with the reason)."""
    report = EpisodeReport(bag=str(path), name=Path(path).name, kept=False)
    bag = None
    try:
        bag = _open_bag(path, report)
        plan = _plan_episode(bag, spec, config, report)
        cameras = {camera.name: camera for camera in spec.cameras}
        sinks = {name: _ArraySink(len(plan.episode), cameras[name].width, cameras[name].height)
                 for name in plan.cameras}
        _stream_frames(bag, plan, spec, sinks, report)
        plan.episode.images = {name: sink.frames for name, sink in sinks.items()}
        plan.episode.validate(spec)
    except Exception as error:  # noqa: BLE001 -- reported and skipped, the other bags go on
        return None, _skip(report, error)
    finally:
        if bag is not None:
            bag.close()
    report.kept = True
    return plan.episode, report


# ---- many bags -> one dataset ------------------------------------------------------------------
def find_bags(paths: Sequence[Path]) -> list[Path]:
    """Bag directories among `paths`; a directory that is not itself a bag contributes its bag subdirectories."""
    bags: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; expected a rosbag2 directory or a folder of them")
        if is_bag(path):
            bags.append(path)
            continue
        children = sorted(child for child in path.iterdir() if is_bag(child)) if path.is_dir() else []
        if not children:
            raise BagError(f"{path}: neither a rosbag2 directory (metadata.yaml, .mcap or .db3 files) "
                           "nor a folder containing any")
        bags += children
    return bags


def _convert_and_encode(path: Path, spec: EmbodimentSpec, config: ConvertConfig, encoder: EpisodeEncoder
                        ) -> tuple[EncodedEpisode | None, EpisodeReport]:
    """One bag -> its episode with each camera encoded into a clip as its frames are decoded, in
    this (worker) process: the frames are never all in memory."""
    report = EpisodeReport(bag=str(path), name=Path(path).name, kept=False)
    bag = None
    clips: dict[str, ClipWriter] = {}
    try:
        bag = _open_bag(path, report)
        plan = _plan_episode(bag, spec, config, report)
        encoder.check(plan.episode, images=False)
        cameras = {camera.name: camera for camera in spec.cameras}
        for name in plan.cameras:
            clips[name] = encoder.clip(name, cameras[name].width, cameras[name].height)
        _stream_frames(bag, plan, spec, clips, report)
        closed = {}
        for name, clip in clips.items():  # the encoder's last frames
            started = time.thread_time()
            closed[name] = clip.close()
            report.seconds["encode"] += time.thread_time() - started
            report.seconds[f"encode.{name}"] += time.thread_time() - started
        encoded = encoder.encoded(plan.episode, closed)
    except Exception as error:  # noqa: BLE001 -- reported and skipped, the other bags go on
        for clip in clips.values():
            clip.abort()
        return None, _skip(report, error)
    finally:
        if bag is not None:
            bag.close()
    report.kept = True
    return encoded, report


def convert_bags(bags: Sequence[Path], spec: EmbodimentSpec, config: ConvertConfig, output: Path,
                 workers: int = 2, progress: Callable[[EpisodeReport], None] | None = None) -> Summary:
    """Convert every bag into one dataset at `output`; bags that fail are reported and left out.

    The workers start reading before the dataset writer's modules are imported here: those imports
    (pyarrow, PyAV, Pinocchio) take longer than reading the first bag; pandas is not among them
    (`arrow_columns`)."""
    from vla_core.data.episode_encoding import EpisodeEncoder
    from vla_core.data.lerobot_layout import check_new_dataset, new_clip_dir

    config = config.resolved(spec)
    started = time.perf_counter()
    output = Path(output)
    check_new_dataset(output, float(config.fps))
    encoder = EpisodeEncoder(spec, float(config.fps), new_clip_dir(output))
    reports: list[EpisodeReport] = []
    # a pool even for one bag: its worker reads while this process imports the writer; never more
    # workers than bags (one without a bag would only cost its fork)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(bags))) if workers > 1 else None
    try:
        futures = [pool.submit(_convert_and_encode, bag, spec, config, encoder) for bag in bags] if pool else []
        launch_cpu = time.process_time() if pool else 0.0  # without a pool, the report's own count is the whole
        from vla_core.data.lerobot_v3 import DatasetWriter  # while the workers read

        with DatasetWriter(output, spec, float(config.fps), config.action_space, clip_dir=encoder.clip_dir) as writer:
            for position, bag in enumerate(bags):
                episode, report = (futures[position].result() if pool
                                   else _convert_and_encode(bag, spec, config, encoder))
                writing = time.thread_time()
                if episode is not None:
                    writer.add_encoded(episode)
                report.seconds["write"] = time.thread_time() - writing
                reports.append(report)
                if progress is not None:
                    progress(report)
            if not any(report.kept for report in reports):
                reasons = "\n".join(f"  {report.bag}: {report.reason}" for report in reports)
                raise EpisodeSkipped(f"no episode could be converted from {len(reports)} bag(s):\n{reasons}")
            closing = time.thread_time()
        reports[-1].seconds["write"] += time.thread_time() - closing
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(encoder.clip_dir, ignore_errors=True)  # the writer removes it, unless it never started
    return Summary(output, reports, time.perf_counter() - started, launch_cpu)
