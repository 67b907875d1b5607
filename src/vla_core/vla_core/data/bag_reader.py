"""rosbag2 recordings (MCAP or SQLite3, one or several storage files) read with the `rosbags` library.

A bag is a directory. With its metadata.yaml (what `ros2 bag record` writes on a clean stop)
rosbags reads all its files as one recording; a directory whose metadata.yaml is missing (a
recorder that was killed, or files copied without it) is read file by file from the storage
files themselves, in name order, so its topics are still found and reported.

Indexed MCAP files with uncompressed chunks are read through their message index
(`mcap_index`): only the wanted channels' messages, each sliced once out of a memory map.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.rosbag2 import Reader

from vla_core.data.mcap_index import IndexedMcap, Located, open_indexed

STORAGE_SUFFIXES = (".mcap", ".db3")
METADATA = "metadata.yaml"


class BagError(ValueError):
    """A bag that cannot be read or lacks what the conversion needs; the message names the bag."""


@dataclass(frozen=True)
class Topic:
    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class IndexedTopic:
    """One topic's messages in one MCAP storage file, located through its index."""

    file: IndexedMcap
    located: Located
    msgtype: str


@dataclass
class Bag:
    """An opened bag: its topics, its metadata's custom_data, and a way to iterate messages."""

    path: Path
    readers: list[Reader]
    custom_data: dict[str, str] = field(default_factory=dict)
    _indexed: dict[int, IndexedMcap | None] = field(default_factory=dict)  # id(storage) -> its index reader

    @property
    def topics(self) -> dict[str, Topic]:
        found: dict[str, Topic] = {}
        for reader in self.readers:
            for connection in reader.connections:
                known = found.get(connection.topic)
                count = connection.msgcount + (known.count if known else 0)
                found[connection.topic] = Topic(connection.topic, connection.msgtype, count)
        return found

    def describe_topics(self) -> str:
        topics = self.topics
        if not topics:
            return "no topics"
        return ", ".join(f"{t.name} ({t.msgtype}, {t.count} msgs)" for t in sorted(topics.values(), key=lambda t: t.name))

    def raw_messages(self, topics: set[str], heads: frozenset[str] = frozenset(), head_bytes: int = 0
                     ) -> Iterator[tuple[str, int, bytes, str]]:
        """(topic, receive time in ns, serialized CDR bytes, message type) for the given topics, file
        by file, each file in receive-time order: for readers that take only some fields from the
        bytes (`cdr_fields`) or deserialise elsewhere (a decoding thread). Of the `heads` topics'
        messages only the first `head_bytes` may be read (all of it where the file is not read
        through its index, or the message is not little-endian CDR)."""
        for reader in self.readers:
            if not any(c.topic in topics for c in reader.connections):
                continue
            if reader.compression_mode == "message":  # rosbags decompresses each message
                for connection, timestamp, raw in reader.messages(
                        connections=[c for c in reader.connections if c.topic in topics]):
                    yield connection.topic, timestamp, raw, connection.msgtype
                continue
            storage = reader.storage
            for part in getattr(storage, "storages", [storage]):  # a directory's files, or the file itself
                yield from self._storage_messages(part, topics, heads, head_bytes)

    def indexed_messages(self, topics: set[str]) -> dict[str, list[IndexedTopic]] | None:
        """Per topic, its messages file by file (in `raw_messages` order) as located through each
        file's message index, for readers that take many messages' bytes at once (`IndexedMcap.gather`);
        None unless every file holding one of the topics can be read so (then read `raw_messages`)."""
        found: dict[str, list[IndexedTopic]] = {topic: [] for topic in topics}
        for reader in self.readers:
            if not any(c.topic in topics for c in reader.connections):
                continue
            if reader.compression_mode == "message":
                return None
            storage = reader.storage
            for part in getattr(storage, "storages", [storage]):
                wanted, indexed, located = self._locate(part, topics)
                if not wanted:
                    continue
                if indexed is None or located is None:
                    return None
                for topic in {c.topic for c in wanted.values()}:
                    channels = [key for key, c in wanted.items() if c.topic == topic]
                    msgtypes = {wanted[key].msgtype for key in channels}
                    if len(msgtypes) != 1:  # one topic of two types in one file: read message by message
                        return None
                    mine = located.subset(np.isin(located.channel, channels))
                    found[topic].append(IndexedTopic(indexed, mine, msgtypes.pop()))
        return found

    def _index(self, storage: Any) -> IndexedMcap | None:
        """The index reader of one storage file (opened once), None where it has none."""
        if id(storage) not in self._indexed:
            self._indexed[id(storage)] = open_indexed(storage)
        return self._indexed[id(storage)]

    def _locate(self, storage: Any, topics: set[str]) -> tuple[dict[int, Any], IndexedMcap | None, Located | None]:
        """The file's connections on `topics` by id, its index reader, and where their messages lie
        (None where the file has no usable index, or no connection is wanted)."""
        wanted = {c.id: c for c in storage.connections if c.topic in topics}
        if not wanted:
            return wanted, None, None
        indexed = self._index(storage)
        return wanted, indexed, indexed.locate(set(wanted)) if indexed is not None else None

    def _storage_messages(self, storage: Any, topics: set[str], heads: frozenset[str], head_bytes: int
                          ) -> Iterator[tuple[str, int, bytes, str]]:
        wanted, indexed, located = self._locate(storage, topics)
        if not wanted:
            return
        if indexed is None or located is None:
            for connection, timestamp, raw in storage.messages(list(wanted.values())):
                yield connection.topic, timestamp, raw, connection.msgtype
            return
        head = {key for key, c in wanted.items() if c.topic in heads}
        for channel, timestamp, raw in indexed.read(located, head, head_bytes):
            connection = wanted[channel]
            yield connection.topic, timestamp, raw, connection.msgtype

    def messages(self, topics: set[str]) -> Iterator[tuple[str, int, Any]]:
        """(topic, receive time in ns, deserialised message) for the given topics, in `raw_messages` order."""
        for topic, timestamp, raw, msgtype in self.raw_messages(topics):
            yield topic, timestamp, deserialize(raw, msgtype)

    def close(self) -> None:
        for indexed in self._indexed.values():
            if indexed is not None:
                indexed.close()
        self._indexed.clear()
        for reader in self.readers:
            if reader.is_open:
                reader.close()


@functools.cache
def _typestore() -> Any:
    """rosbags' type store of the latest ROS 2 release, made on first use: importing rosbags'
    stores costs about as much as reading a short bag, and pass 1 of a conversion reads the fields
    it needs from the bytes without it."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.LATEST)


def deserialize(raw: bytes, msgtype: str) -> Any:
    """A message object from its CDR bytes."""
    return _typestore().deserialize_cdr(raw, msgtype)


def storage_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)


def is_bag(path: Path) -> bool:
    return path.is_dir() and ((path / METADATA).is_file() or bool(storage_files(path)))


def _custom_data(path: Path) -> dict[str, str]:
    metadata = path / METADATA
    if not metadata.is_file():
        return {}
    try:
        data = yaml.safe_load(metadata.read_text()) or {}
    except yaml.YAMLError as error:
        raise BagError(f"{metadata}: not valid YAML: {error}") from error
    custom = (data.get("rosbag2_bagfile_information") or {}).get("custom_data") or {}
    if not isinstance(custom, dict):
        raise BagError(f"{metadata}: custom_data must be a mapping of strings, got {type(custom).__name__}")
    return {str(key): str(value) for key, value in custom.items()}


def open_bag(path: Path) -> Bag:
    """Open every storage file of a bag directory; raises BagError naming the bag and the problem."""
    path = Path(path)
    if not path.is_dir():
        raise BagError(f"{path}: expected a rosbag2 directory (with metadata.yaml and .mcap or .db3 files)")
    targets = [path] if (path / METADATA).is_file() else storage_files(path)
    if not targets:
        raise BagError(f"{path}: no metadata.yaml and no .mcap or .db3 storage files; not a rosbag2 bag")
    readers: list[Reader] = []
    try:
        for target in targets:
            reader = Reader(target)
            reader.open()
            readers.append(reader)
    except Exception as error:  # rosbags raises several kinds for damaged files; all mean "unreadable"
        for reader in readers:
            reader.close()
        where = target if target != path else path
        raise BagError(f"{where}: cannot open as rosbag2 ({type(error).__name__}: {error}); a storage file "
                       "cut short (a recorder that was killed) or damaged reads like this") from error
    return Bag(path, readers, _custom_data(path))
