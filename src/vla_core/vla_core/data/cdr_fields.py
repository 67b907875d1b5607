"""Fields read straight from serialized (CDR) ROS 2 messages, many messages at a time.

Why: deserialising every message in Python (rosbags' `deserialize_cdr`) costs tens of
microseconds each, and a bag holds joint states at 100-500 Hz and cameras whose 150 kB images
pass 1 only needs the stamp of. These readers take what the converter needs from the bytes:

- `header_stamps`: the header stamp of messages that begin with a std_msgs/Header (Image,
  CompressedImage, JointState, JointTrajectory), at bytes 4-12 after the encapsulation header.
- `image_fields`: an Image's or CompressedImage's fields with `data` a view of the serialized
  bytes: deserialising copies every 150 kB raw image once more before it is even decoded.
- `JointValues`: the joint names and the doubles of JointState's `position`, or of
  JointTrajectory's first point's `positions`. A recorder's messages on one topic share one
  layout (same frame_id, same names in the same order), so the layout is parsed once and every
  message of that length whose bytes up to the doubles are identical is read as one (N, bytes)
  array; the few that differ get their own layout, and a message no layout fits (big-endian,
  names and positions of different lengths, a trajectory without points) is left to the caller
  (`fallback`), which deserialises it as before.

The values are exactly those of deserialisation: the same bytes viewed as little-endian doubles.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CDR_LE = b"\x00\x01"  # the encapsulation header of little-endian plain CDR, what ROS 2 writes on x86 and ARM
_U32 = struct.Struct("<I")
_STAMP = struct.Struct("<iI")
HEADER_STAMP_BYTES = 12  # encapsulation (4), stamp sec (4) and nanosec (4): all `header_stamp` reads


def header_stamp(raw: bytes | memoryview) -> tuple[int, int] | None:
    """(sec, nanosec) of a message that starts with a Header; None unless it is little-endian CDR."""
    if bytes(raw[:2]) != CDR_LE or len(raw) < HEADER_STAMP_BYTES:
        return None
    return _STAMP.unpack_from(raw, 4)


def _align(offset: int, size: int) -> int:
    """CDR aligns to the field's size, counted from the end of the 4-byte encapsulation header."""
    return 4 + -(-(offset - 4) // size) * size


def _strings(raw: bytes, offset: int) -> tuple[list[str], int]:
    (count,) = _U32.unpack_from(raw, offset)
    offset += 4
    names = []
    for _ in range(count):
        (length,) = _U32.unpack_from(raw, offset)  # includes the terminating NUL
        names.append(raw[offset + 4:offset + 3 + length].decode())
        offset = _align(offset + 4 + length, 4)
    return names, offset


@dataclass(frozen=True)
class ImageFields:
    """sensor_msgs/Image's fields a decoder reads (`vla_core.images.image_to_rgb`), `data` a view."""

    height: int
    width: int
    encoding: str
    step: int
    data: memoryview


@dataclass(frozen=True)
class CompressedImageFields:
    """sensor_msgs/CompressedImage's fields (`vla_core.images.compressed_to_rgb`), `data` a view."""

    format: str
    data: memoryview


def _string(raw: memoryview, offset: int) -> tuple[str, int]:
    (length,) = _U32.unpack_from(raw, offset)  # includes the terminating NUL
    end = offset + 4 + length
    if length == 0 or end > len(raw):
        raise ValueError("string runs past the message")
    return bytes(raw[offset + 4:end - 1]).decode(), end


def _byte_sequence(raw: memoryview, offset: int) -> memoryview:
    """A sequence<uint8> that ends the message (as Image's and CompressedImage's data do), but for
    the up to 3 bytes of padding some middlewares append to a multiple of 4."""
    offset = _align(offset, 4)
    (length,) = _U32.unpack_from(raw, offset)
    end = offset + 4 + length
    if not 0 <= len(raw) - end <= 3:
        raise ValueError("data does not end the message")
    return raw[offset + 4:end]


def image_fields(raw: bytes | memoryview, msgtype: str) -> ImageFields | CompressedImageFields | None:
    """The fields of an Image or CompressedImage read in place; None where the bytes are not plain
    little-endian CDR of that type (the caller deserialises those, and gets its error if damaged)."""
    view = memoryview(raw)
    if bytes(view[:2]) != CDR_LE:
        return None
    try:
        _, offset = _string(view, 12)  # frame_id
        if msgtype.endswith("CompressedImage"):
            text, offset = _string(view, _align(offset, 4))
            return CompressedImageFields(text, _byte_sequence(view, offset))
        if not msgtype.endswith("Image"):
            return None
        height, width = struct.unpack_from("<II", view, _align(offset, 4))
        encoding, offset = _string(view, _align(offset, 4) + 8)
        (step,) = _U32.unpack_from(view, _align(offset + 1, 4))  # after is_bigendian (one byte)
        return ImageFields(height, width, encoding, step, _byte_sequence(view, _align(offset + 1, 4) + 4))
    except (struct.error, UnicodeDecodeError, ValueError):
        return None


@dataclass(frozen=True)
class Layout:
    """Where a message's doubles start and how many there are; `prefix` is bytes 12..`offset`
    (frame_id, names, counts), equal in every message of this layout."""

    size: int
    offset: int
    names: tuple[str, ...]
    prefix: bytes


def layout(raw: bytes, msgtype: str) -> Layout | None:
    """The layout of one JointState or JointTrajectory message, or None where it has no such fixed
    form (big-endian, a count of positions that differs from the names', no trajectory point)."""
    if raw[:2] != CDR_LE:
        return None
    try:
        (frame_id,) = _U32.unpack_from(raw, 12)
        offset = _align(16 + frame_id, 4)
        names, offset = _strings(raw, offset)
        if msgtype.endswith("JointTrajectory"):
            (points,) = _U32.unpack_from(raw, offset)
            if points == 0:
                return None
            offset += 4
        (count,) = _U32.unpack_from(raw, offset)
        offset = _align(offset + 4, 8)
    except (struct.error, UnicodeDecodeError):
        return None
    if count != len(names) or offset + 8 * count > len(raw):
        return None
    return Layout(len(raw), offset, tuple(names), raw[12:offset])


@dataclass
class JointValues:
    """Per message: header stamp (sec, nanosec) and the doubles in the message's name order, with
    the names; `fallback` lists the messages (by position in the input) no layout fitted."""

    sec: np.ndarray  # (N,) int64
    nanosec: np.ndarray  # (N,) int64
    values: list[tuple[np.ndarray, tuple[str, ...], np.ndarray]]  # (message positions, names, (n, J) doubles)
    fallback: list[int]


def joint_values(raws: Sequence[bytes], msgtype: str, max_layouts: int = 8) -> JointValues:
    """Read JointState positions (or JointTrajectory first-point positions) of many messages at once.

    Messages are grouped by length; within a group a layout taken from its first unread message
    reads every message whose bytes 12..offset match it. After `max_layouts` layouts in a group the
    rest go to `fallback` (a topic whose frame_id or names change every message)."""
    by_size: dict[int, list[int]] = {}
    for position, raw in enumerate(raws):
        by_size.setdefault(len(raw), []).append(position)
    groups = [(np.asarray(positions), np.frombuffer(b"".join(raws[p] for p in positions), np.uint8).reshape(
        len(positions), size)) for size, positions in by_size.items()]
    return grouped_joint_values(groups, len(raws), msgtype, max_layouts)


def grouped_joint_values(groups: Sequence[tuple[np.ndarray, np.ndarray]], count: int, msgtype: str,
                         max_layouts: int = 8) -> JointValues:
    """`joint_values` of `count` messages given as groups of one length each: (their positions,
    their bytes as an (n, length) uint8 array), as an indexed MCAP file gives them (`IndexedMcap.gather`)."""
    sec, nanosec = np.zeros(count, np.int64), np.zeros(count, np.int64)
    values: list[tuple[np.ndarray, tuple[str, ...], np.ndarray]] = []
    fallback: list[int] = []
    for members, block in groups:
        unread = np.ones(len(members), bool)
        for _ in range(max_layouts):
            if not unread.any():
                break
            first = int(np.flatnonzero(unread)[0])
            found = layout(bytes(block[first]), msgtype)
            if found is None:
                fallback.append(int(members[first]))
                unread[first] = False
                continue
            prefix = np.frombuffer(found.prefix, np.uint8)
            match = unread & (block[:, 12:found.offset] == prefix).all(axis=1)
            match &= (block[:, 0] == CDR_LE[0]) & (block[:, 1] == CDR_LE[1])
            rows = block[match]
            sec[members[match]] = np.ascontiguousarray(rows[:, 4:8]).view("<i4")[:, 0]
            nanosec[members[match]] = np.ascontiguousarray(rows[:, 8:12]).view("<u4")[:, 0]
            doubles = np.ascontiguousarray(rows[:, found.offset:found.offset + 8 * len(found.names)]).view("<f8")
            values.append((members[match], found.names, doubles.astype(np.float64)))
            unread &= ~match
        fallback.extend(int(p) for p in members[unread])
    return JointValues(sec, nanosec, values, sorted(fallback))
