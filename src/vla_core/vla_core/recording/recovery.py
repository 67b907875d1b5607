"""Rebuild episodes cut by a crash into complete bags, or name the ones that cannot be.

An episode directory that still holds the recording marker was never stopped: its MCAP file
has no summary and may end in a half-written record. `recover_episodes` reads every complete
record sequentially (a chunk counts only when it is whole, so what survives is exactly what
was flushed), writes a proper bag with metadata.yaml next to it, marks it `vla_ros.recovered`,
and swaps it into the episode's place. A directory with nothing readable is renamed to
`<episode>.unrecoverable` and reported by name; nothing is left looking like a finished episode.

The swap is crash-safe: the new bag is built in `<output>/.recovering/<episode>`, the cut one is
moved to `.recovering/<episode>.partial`, the new one moved into place, then the partial deleted.
A partial found without its episode directory is moved back and recovered again.
"""
from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path

from mcap.exceptions import McapError
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.rosbag2.metadata import parse_qos

from vla_core.recording.bag_writer import RosbagsBagWriter
from vla_core.recording.durable_files import fsync_path
from vla_core.recording.episode_metadata import RECORDING_MARKER, MarkerError, read_marker
from vla_core.recording.message_definitions import MessageDefinitions, UnknownMessageType

WORK_DIR = ".recovering"
UNRECOVERABLE_SUFFIX = ".unrecoverable"


class UnrecoverableEpisode(RuntimeError):
    """An episode directory with nothing that can be rebuilt; the message names it and says why."""


@dataclass
class RecoveryReport:
    recovered: dict[str, int] = field(default_factory=dict)  # episode id -> messages kept
    unrecoverable: dict[str, str] = field(default_factory=dict)  # directory -> why


@dataclass
class CompleteRecords:
    """What a possibly cut MCAP file holds in whole records, and where reading stopped if it did."""

    schemas: dict[int, Schema] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    stopped_by: str = ""  # the error that ended reading early; empty for a file read to its end


def read_complete_records(path: Path) -> CompleteRecords:
    """Every schema, channel and message in whole records of `path`, up to the first cut."""
    records = CompleteRecords()
    with path.open("rb") as stream:
        try:
            for record in StreamReader(stream, emit_chunks=False).records:
                if isinstance(record, Schema):
                    records.schemas[record.id] = record
                elif isinstance(record, Channel):
                    records.channels[record.id] = record
                elif isinstance(record, Message):
                    records.messages.append(record)
        except (McapError, EOFError, ValueError, KeyError, struct.error) as error:  # a cut record, or garbage
            records.stopped_by = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return records


def recover_episodes(output_dir: Path, definitions: MessageDefinitions | None = None) -> RecoveryReport:
    """Recover every episode in `output_dir` that was cut by a crash."""
    definitions = definitions or MessageDefinitions()
    report = RecoveryReport()
    work = output_dir / WORK_DIR
    for partial in sorted(work.glob("*.partial")) if work.is_dir() else []:
        episode_dir = output_dir / partial.name.removesuffix(".partial")
        if not episode_dir.exists():
            partial.replace(episode_dir)  # a crash during the swap: start that episode again
    for directory in sorted(p for p in output_dir.iterdir() if (p / RECORDING_MARKER).is_file()):
        try:
            report.recovered[directory.name] = recover_episode(directory, definitions)
        except UnrecoverableEpisode as error:
            target = directory.with_name(directory.name + UNRECOVERABLE_SUFFIX)
            directory.replace(target)
            report.unrecoverable[str(target)] = str(error)
    if work.is_dir():
        shutil.rmtree(work)
    fsync_path(output_dir)
    return report


def recover_episode(directory: Path, definitions: MessageDefinitions) -> int:
    """Rebuild one cut episode in place; returns how many messages it kept."""
    try:
        info = read_marker(directory)
    except MarkerError as error:
        raise UnrecoverableEpisode(str(error)) from error
    files = sorted(directory.glob("*.mcap"))
    if not files:
        raise UnrecoverableEpisode(f"{directory}: no .mcap file")
    records = [read_complete_records(path) for path in files]
    kept = sum(len(r.messages) for r in records)
    if kept == 0:
        why = "; ".join(f"{p.name}: {r.stopped_by or 'no messages'}" for p, r in zip(files, records))
        raise UnrecoverableEpisode(f"{directory}: no complete message ({why})")
    work = directory.parent / WORK_DIR
    rebuilt = work / directory.name
    if rebuilt.exists():
        shutil.rmtree(rebuilt)
    work.mkdir(exist_ok=True)
    try:
        _rebuild(rebuilt, records, definitions, replace(info, recovered=True).custom_data())
    except UnknownMessageType as error:
        raise UnrecoverableEpisode(f"{directory}: {error}") from error
    partial = work / f"{directory.name}.partial"
    directory.replace(partial)
    rebuilt.replace(directory)
    fsync_path(directory.parent)
    shutil.rmtree(partial)
    return kept


def _rebuild(target: Path, records: list[CompleteRecords], definitions: MessageDefinitions,
             custom_data: dict[str, str]) -> None:
    """A complete bag at `target` with every kept message, in file order, with its receive time."""
    for part in records:  # every type needs a definition: fail before anything is written
        for channel in part.channels.values():
            definitions.definition(part.schemas[channel.schema_id].name)
    writer = RosbagsBagWriter(target, definitions)
    topics: set[str] = set()
    for part in records:
        for channel in part.channels.values():
            if channel.topic not in topics:
                qos = parse_qos(channel.metadata.get("offered_qos_profiles", "") or "[]")
                writer.add_topic(channel.topic, part.schemas[channel.schema_id].name, qos)
                topics.add(channel.topic)
        for message in part.messages:
            writer.write(part.channels[message.channel_id].topic, message.log_time, message.data)
    writer.close(custom_data)
