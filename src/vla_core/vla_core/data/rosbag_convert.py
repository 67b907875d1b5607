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
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_core.data.bag_reader import Bag, BagError, is_bag, open_bag
from vla_core.data.convert_config import (
    COMMAND_TYPES,
    IMAGE_TYPES,
    JOINT_STATE_TYPES,
    ConvertConfig,
    match_topic,
)
from vla_core.data.episode import Episode
from vla_core.data.episode_encoding import EncodedEpisode, EpisodeEncoder
from vla_core.data.lerobot_v3 import DatasetWriter
from vla_core.data.resample import frame_times, gap_runs, latest, nearest
from vla_core.embodiment import EmbodimentSpec
from vla_core.images import message_to_rgb, resize_rgb
from vla_core.recording.episode_metadata import EMBODIMENT, EPISODE_ID, INSTRUCTION, OPERATOR_NOTES, SUCCESS

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")


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


@dataclass
class Summary:
    output: Path
    reports: list[EpisodeReport]
    seconds: float

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
    rows: list[np.ndarray] = field(default_factory=list)  # joint streams only
    ordinals: list[int] = field(default_factory=list)  # message number within its topic
    refused: int = 0
    note: str = ""

    def sorted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        order = np.argsort(np.asarray(self.stamps), kind="stable")
        stamps = np.asarray(self.stamps, dtype=np.int64)[order]
        ordinals = np.asarray(self.ordinals)[order]
        return stamps, ordinals, (np.stack(self.rows)[order] if self.rows else None)


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


def _read_streams(bag: Bag, topics: dict[str, str], spec: EmbodimentSpec, config: ConvertConfig
                  ) -> dict[str, _Stream]:
    index = {name: i for i, name in enumerate(spec.joint_names)}
    size = len(index)
    role_of = {topic: role for role, topic in topics.items()}
    msgtypes = {name: topic.msgtype for name, topic in bag.topics.items()}
    streams = {role: _Stream() for role in topics}
    counts = dict.fromkeys(topics, 0)
    use_header = config.stamps == "header"
    for topic, received, msg in bag.messages(set(role_of)):
        role = role_of[topic]
        stream = streams[role]
        ordinal = counts[role]
        counts[role] += 1
        if role == "joint_states":
            row = _joint_row(msg.name, msg.position, index, size)
            if np.isnan(row).any():
                stream.refused += 1
                stream.note = f"lacks {[n for n, v in zip(spec.joint_names, row) if np.isnan(v)]} (has {list(msg.name)})"
                continue
            stream.rows.append(row)
        elif role == "command":
            row = _command_row(msg, msgtypes[topic], index, size)
            if row is None or np.isnan(row).all():
                stream.refused += 1
                stream.note = f"carries none of {list(spec.joint_names)} or no trajectory point"
                continue
            stream.rows.append(row)
        stream.stamps.append(_stamp(msg, received, use_header))
        stream.ordinals.append(ordinal)
    return streams


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


def _episode_from_bag(bag: Bag, spec: EmbodimentSpec, config: ConvertConfig, report: EpisodeReport) -> Episode:
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
    streams = _read_streams(bag, topics, spec, config)
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
    images = _read_images(bag, topics, spec, {role: (sorted_streams[role][1], picks[role][keep])
                                               for role in topics if role.startswith("camera:")})
    report.frames, report.recorded_s, report.action_source = count, count / fps, action_source
    metadata = {
        "bag": str(bag.path), "start_time_ns": int(times[0]), "topics": report.matched,
        "action_source": action_source, "stamps": config.stamps, "gap_frames_trimmed": report.gap_frames,
        "operator_notes": _custom(bag, OPERATOR_NOTES), "episode_id": _custom(bag, EPISODE_ID),
    }
    return Episode(name=report.name, embodiment=spec.name, task=task, fps=fps, timestamps=(times - times[0]) * 1e-9,
                   state=state, action=action, images=images, success=_success(_custom(bag, SUCCESS)),
                   metadata={key: value for key, value in metadata.items() if value is not None})


def _read_images(bag: Bag, topics: dict[str, str], spec: EmbodimentSpec,
                 picks: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pass 2: decode only the messages the timeline picked, resized to the profile's size."""
    cameras = {camera.name: camera for camera in spec.cameras}
    frames: dict[str, np.ndarray] = {}
    wanted: dict[str, dict[int, list[int]]] = {}
    for role, (ordinals, picked) in picks.items():
        camera = cameras[role.split(":", 1)[1]]
        frames[role] = np.zeros((len(picked), camera.height, camera.width, 3), dtype=np.uint8)
        positions: dict[int, list[int]] = {}
        for position, sorted_index in enumerate(picked):
            positions.setdefault(int(ordinals[sorted_index]), []).append(position)
        wanted[role] = positions
    role_of = {topics[role]: role for role in picks}
    counts = dict.fromkeys(picks, 0)
    for topic, _, msg in bag.messages(set(role_of)):
        role = role_of[topic]
        ordinal = counts[role]
        counts[role] += 1
        positions = wanted[role].pop(ordinal, None)
        if positions is None:
            continue
        camera = cameras[role.split(":", 1)[1]]
        try:
            image = resize_rgb(message_to_rgb(msg), camera.width, camera.height)
        except ValueError as error:
            raise EpisodeSkipped(f"camera {camera.name!r} on {topic}, message {ordinal}: {error}") from error
        for position in positions:  # one position, or more where the camera dropped frames
            frames[role][position] = image
    return {role.split(":", 1)[1]: array for role, array in frames.items()}


def convert_bag(path: Path, spec: EmbodimentSpec, config: ConvertConfig) -> tuple[Episode | None, EpisodeReport]:
    """One bag -> (episode, report); a bag that cannot give an episode gives (None, report with the reason)."""
    report = EpisodeReport(bag=str(path), name=Path(path).name, kept=False)
    bag = None
    try:
        bag = open_bag(Path(path))
        report.name = _custom(bag, EPISODE_ID) or report.name
        episode = _episode_from_bag(bag, spec, config, report)
        episode.validate(spec)
    except (EpisodeSkipped, BagError) as error:
        report.reason = str(error)
        return None, report
    except Exception as error:  # noqa: BLE001 -- a damaged bag surfaces as whatever its parser raises; the rest go on
        report.reason = f"unreadable ({type(error).__name__}: {error})"
        return None, report
    finally:
        if bag is not None:
            bag.close()
    report.kept = True
    return episode, report


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
    """`convert_bag`, then the episode's videos encoded in this (worker) process."""
    episode, report = convert_bag(path, spec, config)
    return (encoder(episode) if episode is not None else None), report


def convert_bags(bags: Sequence[Path], spec: EmbodimentSpec, config: ConvertConfig, output: Path,
                 workers: int = 2, progress: Callable[[EpisodeReport], None] | None = None) -> Summary:
    """Convert every bag into one dataset at `output`; bags that fail are reported and left out."""
    config = config.resolved(spec)
    started = time.perf_counter()
    reports: list[EpisodeReport] = []
    with DatasetWriter(output, spec, float(config.fps), config.action_space) as writer:
        encoder = writer.encoder()

        def take(episode: EncodedEpisode | None, report: EpisodeReport) -> None:
            if episode is not None:
                writer.add_encoded(episode)
            reports.append(report)
            if progress is not None:
                progress(report)

        if workers <= 1:
            for bag in bags:
                take(*_convert_and_encode(bag, spec, config, encoder))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_convert_and_encode, bag, spec, config, encoder) for bag in bags]
                for future in futures:
                    take(*future.result())
        if not any(report.kept for report in reports):
            reasons = "\n".join(f"  {report.bag}: {report.reason}" for report in reports)
            raise EpisodeSkipped(f"no episode could be converted from {len(reports)} bag(s):\n{reasons}")
    return Summary(Path(output), reports, time.perf_counter() - started)
