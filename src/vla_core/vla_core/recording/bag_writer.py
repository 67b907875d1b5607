"""One rosbag2 directory (MCAP storage, metadata.yaml) written from serialized messages as they came.

Two back ends with one interface: `rosbag2_py` (rosbag2's own writer, on a ROS 2 install) and
the `rosbags` library's Writer (pure Python, used where rosbag2 is not installed, as on this
project's machines). Both produce what `ros2 bag info`, rosbags and Foxglove read. Messages are
written byte for byte (CDR as received), stamped with their receive time as rosbag2 does.

Durability: `flush()` ends the open MCAP chunk and fsyncs the file, so a crash loses at most
what arrived since the last flush (the rosbags back end; rosbag2's writer writes chunks when
they fill, and offers no flush). `close()` writes the summary and metadata.yaml and fsyncs them with the
directory: after it returns the episode is on disk.

That guarantee holds for the rosbags back end only, so `auto` takes it on every machine, a ROS
install included; `rosbag2_py` is there for whoever asks for it by name, knowing what it loses.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import yaml
from rosbags.interfaces import Qos
from rosbags.rosbag2 import StoragePlugin, Writer

from vla_core.recording.durable_files import atomic_write_text, sync_tree
from vla_core.recording.message_definitions import MessageDefinitions

BACKENDS = ("auto", "rosbags", "rosbag2_py")


class BagWriter(Protocol):
    def add_topic(self, topic: str, msgtype: str, qos: list[Qos]) -> None: ...
    def write(self, topic: str, receive_time_ns: int, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def push(self) -> int | None: ...
    def close(self, custom_data: dict[str, str]) -> None: ...
    def abort(self) -> None: ...


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

    def flush(self) -> None:
        descriptor = self.push()
        os.fsync(descriptor)

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


class Rosbag2PyBagWriter:  # pragma: no cover - rosbag2_py is not installable here (see README)
    """rosbag2's SequentialWriter with the MCAP storage plugin, on a ROS 2 install."""

    def __init__(self, directory: Path, definitions: MessageDefinitions) -> None:
        import rosbag2_py

        self.directory = directory
        self._rosbag2 = rosbag2_py
        options = rosbag2_py.StorageOptions(uri=str(directory), storage_id="mcap")
        options.max_cache_size = 0  # straight to the storage plugin, not through a 100 MiB message cache
        self._writer = rosbag2_py.SequentialWriter()
        self._writer.open(options, rosbag2_py.ConverterOptions(input_serialization_format="cdr",
                                                               output_serialization_format="cdr"))

    def add_topic(self, topic: str, msgtype: str, qos: list[Qos]) -> None:
        fields = {"name": topic, "type": msgtype, "serialization_format": "cdr"}
        try:  # Jazzy and newer number topics; Humble's TopicMetadata has no id
            metadata = self._rosbag2.TopicMetadata(id=0, **fields)
        except TypeError:
            metadata = self._rosbag2.TopicMetadata(**fields)
        self._writer.create_topic(metadata)

    def write(self, topic: str, receive_time_ns: int, data: bytes) -> None:
        self._writer.write(topic, data, receive_time_ns)

    def flush(self) -> None:
        """rosbag2_py offers no flush: its MCAP plugin writes each chunk when it fills (a crash can
        lose the chunk being filled); close() fsyncs everything."""

    def push(self) -> None:
        """Nothing to push (see flush)."""

    def close(self, custom_data: dict[str, str]) -> None:
        close = getattr(self._writer, "close", None)
        if close is not None:
            close()
        self._writer = None  # older distros close the bag when the writer is destroyed
        path = self.directory / "metadata.yaml"
        metadata = yaml.safe_load(path.read_text(encoding="utf-8"))
        information = metadata["rosbag2_bagfile_information"]
        information["custom_data"] = {**(information.get("custom_data") or {}), **custom_data}
        atomic_write_text(path, yaml.safe_dump(metadata, sort_keys=False))
        sync_tree(self.directory)

    def abort(self) -> None:
        self._writer = None


def open_bag_writer(directory: Path, definitions: MessageDefinitions, backend: str = "auto") -> BagWriter:
    """A writer for a new bag directory; `auto` takes the rosbags back end, the one whose flush
    bounds what a crash loses (see above), even where rosbag2_py is installed."""
    if backend not in BACKENDS:
        raise ValueError(f"bag writer back end {backend!r}: expected one of {list(BACKENDS)}")
    if backend == "rosbag2_py":
        return Rosbag2PyBagWriter(directory, definitions)
    return RosbagsBagWriter(directory, definitions)
