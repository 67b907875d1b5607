"""Messages of an MCAP storage file found through its message index and read in place.

Why (issue 36): rosbags reads a topic's messages by reading every chunk that holds one, whole,
and walking all of its records in Python, then copying each message out, so a conversion that
wants 12 bytes of each 150 kB camera image (its header stamp, pass 1) reads every image, and pass
2 copies each image three times before it is decoded. An indexed MCAP file (what rosbag2 and
rosbags write) says where every message of every channel is: its MessageIndex records (log time,
offset within the chunk) per chunk. Where the chunks are stored uncompressed, this reader takes
those offsets as arrays, reads the record headers of all of them at once through a memory map, and
reads each wanted message (or the head of it) with one `pread`: one copy, no walk over other
channels' records. Memory stays bounded however long the file: the map's pages are released
after every block of record headers, and messages are read into their own buffers, not mapped.

The order is rosbags' (`McapReader.messages`): by log time, ties in file order. A file this
reader cannot serve as it stands (no chunk index, compressed chunks, an index that does not
point at message records of its channel) gives None from `open_indexed`, and its caller reads it
with rosbags instead.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MESSAGE_OP = 0x05
# a chunk record: opcode (1), length (8), start and end time (8 + 8), uncompressed size (8),
# crc (4), compression string length (4) and its characters (none: uncompressed), records length (8)
CHUNK_RECORDS_AT = 1 + 8 + 8 + 8 + 8 + 4 + 4 + 8
# a message record: opcode (1), length (8), channel id (2), sequence (4), log and publish time (8 + 8)
MESSAGE_DATA_AT = 1 + 8 + 2 + 4 + 8 + 8
MESSAGE_FIELDS = 2 + 4 + 8 + 8  # what a message record's length counts besides the data
CDR_LE = b"\x00\x01"
# record headers (or small messages) gathered at a time: each page fault maps up to 64 kB of the
# file around it (the kernel's fault-around), so a block holds at most about HEADER_BLOCK x 64 kB
# of mapped file
HEADER_BLOCK = 256


@dataclass
class Located:
    """Where the wanted messages are, in reading order: per message its channel id, log time (ns),
    and the file offset and length of its serialized data."""

    channel: np.ndarray
    log_time: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    little_endian: np.ndarray  # bool: the data starts with little-endian CDR's encapsulation header

    def subset(self, rows: np.ndarray) -> Located:
        """The messages at `rows` (a mask or positions), in this order."""
        return Located(self.channel[rows], self.log_time[rows], self.offset[rows], self.length[rows],
                       self.little_endian[rows])


class IndexedMcap:
    """One MCAP storage file (rosbags' McapReader, opened) read through its message index."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._file = open(storage.path, "rb")  # noqa: SIM115 -- held open with the map until close()
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        self._map.madvise(mmap.MADV_RANDOM)  # a few bytes per message: no read-ahead

    def close(self) -> None:
        self._map.close()
        self._file.close()

    def locate(self, channels: set[int]) -> Located | None:
        """Every message of `channels` in reading order; None where the index does not describe the file."""
        try:
            return self._locate(channels)
        except (IndexError, ValueError):  # an index offset past the file's end, a record cut short
            return None

    def _locate(self, channels: set[int]) -> Located | None:
        ids, times, offsets = [], [], []
        descriptor = self._file.fileno()
        for chunk in self._storage.chunks:
            records = chunk.chunk_start_offset + CHUNK_RECORDS_AT
            wanted = {channel: at for channel, at in chunk.message_index_offsets.items() if channel in channels}
            if not wanted:
                continue
            # the chunk's MessageIndex records, read (not mapped: the kernel would map 64 kB around each)
            first = chunk.chunk_start_offset + chunk.chunk_length
            indexes = os.pread(descriptor, chunk.message_index_length, first)
            for channel, index_at in wanted.items():
                # a MessageIndex record: opcode (1), length (8), channel id (2), entries length (4), entries
                at = index_at - first
                if not 0 <= at < len(indexes) or indexes[at] != 0x07:
                    return None
                size = int.from_bytes(indexes[at + 11:at + 15], "little")
                entries = np.frombuffer(indexes[at + 15:at + 15 + size], "<u8").reshape(-1, 2)
                ids.append(np.full(len(entries), channel, np.int64))
                times.append(entries[:, 0].astype(np.int64))
                offsets.append(entries[:, 1].astype(np.int64) + records)
        if not ids:
            return Located(*(np.zeros(0, np.int64) for _ in range(4)), np.zeros(0, bool))
        channel, log_time, record = np.concatenate(ids), np.concatenate(times), np.concatenate(offsets)
        order = np.lexsort((record, log_time))  # rosbags' order: log time, then place in the file
        channel, log_time, record = channel[order], log_time[order], record[order]
        if record.size and (record.min() < 0 or record.max() + MESSAGE_DATA_AT > len(self._map)):
            return None
        heads = self._record_heads(record)
        length = np.ascontiguousarray(heads[:, 1:9]).view("<u8")[:, 0].astype(np.int64) - MESSAGE_FIELDS
        stored_channel = np.ascontiguousarray(heads[:, 9:11]).view("<u2")[:, 0]
        if ((heads[:, 0] != MESSAGE_OP) | (stored_channel != channel) | (length < 0)).any():
            return None
        offset = record + MESSAGE_DATA_AT
        if length.size and (offset + length).max() > len(self._map):
            return None
        little_endian = ((length >= 2) & (heads[:, MESSAGE_DATA_AT] == CDR_LE[0])
                         & (heads[:, MESSAGE_DATA_AT + 1] == CDR_LE[1]))
        return Located(channel, log_time, offset, length, little_endian)

    def _record_heads(self, record: np.ndarray) -> np.ndarray:
        """(N, MESSAGE_DATA_AT + 2) bytes at each record offset (the last two may run past a short
        file's end: then zero)."""
        return self.gather(record, MESSAGE_DATA_AT + 2)

    def gather(self, offsets: np.ndarray, width: int) -> np.ndarray:
        """(N, width) bytes starting at each file offset (bytes past the file's end read as its last
        byte), gathered through the map a block at a time, each block's pages released after it
        (they count as this process's resident memory while mapped): many small messages (joint
        states, or the head of each camera image) read without a system call or a Python step each."""
        result = np.zeros((len(offsets), width), np.uint8)
        view = np.frombuffer(self._map, np.uint8)
        # every window of `width` bytes, as a view: taking rows of it copies each message's bytes in
        # one step (3-4 times faster than indexing byte by byte)
        windows = np.lib.stride_tricks.sliding_window_view(view, width) if width <= len(view) else view[:0, None]
        try:
            for first in range(0, len(offsets), HEADER_BLOCK):
                starts = offsets[first:first + HEADER_BLOCK]
                inside = starts <= len(view) - width
                rows = result[first:first + HEADER_BLOCK]
                rows[inside] = windows[starts[inside]]
                if not inside.all():  # near the end of a short file
                    rows[~inside] = view[np.minimum(starts[~inside, None] + np.arange(width), len(view) - 1)]
                self._map.madvise(mmap.MADV_DONTNEED)
        finally:
            del view, windows
        return result

    def message(self, offset: int, length: int) -> bytes:
        """One message's bytes (a located `offset` and `length`)."""
        data = os.pread(self._file.fileno(), length, offset)
        if len(data) != length:
            raise OSError(f"{self._storage.path}: {len(data)} of {length} bytes read at offset {offset}")
        return data

    def read(self, located: Located, head: set[int], head_bytes: int) -> Iterator[tuple[int, int, bytes]]:
        """(channel id, log time, bytes) per located message; of `head` channels' messages only the
        first `head_bytes`, unless the message is not little-endian CDR (then all of it)."""
        for channel, log_time, offset, length, little_endian in zip(
                located.channel.tolist(), located.log_time.tolist(), located.offset.tolist(),
                located.length.tolist(), located.little_endian.tolist()):
            if channel in head and little_endian:
                length = min(length, head_bytes)
            yield channel, log_time, self.message(offset, length)


def open_indexed(storage: Any) -> IndexedMcap | None:
    """An index reader for an opened rosbags McapReader whose chunks are indexed and uncompressed; else None."""
    chunks = getattr(storage, "chunks", None)
    if not chunks or any(chunk.compression for chunk in chunks) or not Path(storage.path).is_file():
        return None
    return IndexedMcap(storage)
