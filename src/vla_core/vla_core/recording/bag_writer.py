"""One rosbag2 directory (MCAP storage, metadata.yaml) written from serialized messages as they came.

Written through the `rosbags` library's Writer (pure Python) on every machine, a ROS 2 install
included; `ros2 bag info`, rosbags and Foxglove read what it writes. Messages are written byte for
byte (CDR as received), stamped with their receive time as rosbag2 does, and each topic keeps the
QoS profiles its publishers offered (in metadata.yaml, as `ros2 bag record` stores them).

Durability: `push()` ends the open MCAP chunk and hands back the file's descriptor for the
caller to fsync off the lock that camera callbacks take (see EpisodeRecorder.flush), so a crash
loses at most what arrived since the last flush. `close()` writes the summary and metadata.yaml
and fsyncs them with the directory: after it returns the episode is on disk.

One writer on purpose: rosbag2's own (`rosbag2_py`) was a second back end, removed (issue 33)
because it drops the recorded QoS and offers no flush; `bag_writer: rosbag2_py` is refused by
name with that reason.
"""
from __future__ import annotations

from pathlib import Path

from rosbags.interfaces import Qos
from rosbags.rosbag2 import StoragePlugin, Writer

from vla_core.recording.durable_files import sync_tree
from vla_core.recording.message_definitions import MessageDefinitions

WRITERS = ("auto", "rosbags")  # both mean the rosbags writer; `auto` is the default
REMOVED_WRITERS = {"rosbag2_py": "removed: it drops the recorded QoS and cannot flush, so a crash could lose "
                                 "acknowledged episodes; the rosbags writer is used on every install"}


class RosbagsBagWriter:
    """rosbag2 version 9, MCAP storage, through rosbags.rosbag2.Writer."""

    def __init__(self, directory: Path, definitions: MessageDefinitions) -> None:
        self.directory = directory
        self._definitions = definitions
        self._writer = Writer(directory, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict = {}

    def add_topic(self, topic: str, msgtype: str, qos: list[Qos]) -> None:
        msgdef, rihs01 = self._definitions.definition(msgtype)
        self._connections[topic] = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=rihs01,
                                                               offered_qos_profiles=qos)

    def write(self, topic: str, receive_time_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], receive_time_ns, data)

    def push(self) -> int:
        """Every message so far into the file (not yet onto the disk): fast, no fsync. Returns the
        file's descriptor, for the caller to fsync where waiting for the disk blocks nobody."""
        # rosbags' MCAP storage keeps the open chunk in memory until it reaches 1 MiB; ending it
        # here (its own close_chunk, as close() does) puts every message so far into the file.
        storage = self._writer.storage
        if storage.chunk.msgs:
            storage.close_chunk()
        storage.bio.flush()
        return storage.bio.fileno()

    def close(self, custom_data: dict[str, str]) -> None:
        for key, value in custom_data.items():
            self._writer.set_custom_data(key, value)
        self._writer.close()
        sync_tree(self.directory)

    def abort(self) -> None:
        self._writer.abort()


def writer_problem(name: str) -> str | None:
    """What is wrong with a `bag_writer` value, or None: a removed writer is refused by name with
    the reason it was removed, so a parameter file that still asks for it fails at start-up."""
    if name in REMOVED_WRITERS:
        return REMOVED_WRITERS[name]
    return None if name in WRITERS else f"expected one of {list(WRITERS)}"


def open_bag_writer(directory: Path, definitions: MessageDefinitions, writer: str = "auto") -> RosbagsBagWriter:
    """A writer for a new bag directory; raises ValueError naming a `writer` it does not offer."""
    problem = writer_problem(writer)
    if problem:
        raise ValueError(f"bag writer {writer!r}: {problem}")
    return RosbagsBagWriter(directory, definitions)
