"""Message definitions and type hashes for a bag's schemas, looked up by type name.

MCAP readers (Foxglove, rosbags, `ros2 bag`) decode a channel with the schema stored beside
it, so every connection needs the full `.msg` text with its dependencies and the RIHS01 hash.
rosbags' type store knows the standard ROS 2 messages; anything else (vla_msgs, a robot's own
messages) is read from the `.msg` files installed under an ament prefix
(`<prefix>/share/<package>/msg/<Name>.msg`), dependencies included.
"""
from __future__ import annotations

import os
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.base import Nodetype


class UnknownMessageType(LookupError):
    """A message type neither in the type store nor installed as a .msg file."""


def _store_for_distro() -> Stores:
    name = f"ROS2_{os.environ.get('ROS_DISTRO', '').upper()}"
    return Stores[name] if name in Stores.__members__ else Stores.LATEST


class MessageDefinitions:
    """`definition(msgtype)` -> (concatenated .msg text, RIHS01 hash), cached per type."""

    def __init__(self, ament_prefixes: list[Path] | None = None) -> None:
        self._store = get_typestore(_store_for_distro())
        if ament_prefixes is None:
            ament_prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
        self._prefixes = ament_prefixes
        self._cache: dict[str, tuple[str, str]] = {}

    def definition(self, msgtype: str) -> tuple[str, str]:
        if msgtype not in self._cache:
            self._register(msgtype)
            msgdef, _ = self._store.generate_msgdef(msgtype, ros_version=2)
            self._cache[msgtype] = (msgdef, self._store.hash_rihs01(msgtype))
        return self._cache[msgtype]

    def _register(self, msgtype: str) -> None:
        """Register `msgtype` and every type it uses that the store lacks, from .msg files."""
        pending = [msgtype]
        while pending:
            name = pending.pop()
            if name in self._store.fielddefs:
                continue
            types = get_types_from_msg(self._msg_file(name).read_text(encoding="utf-8"), name)
            self._store.register(types)
            for _, fields in types.values():
                pending += [used for _, field in fields for used in _named_types(field)]

    def _msg_file(self, msgtype: str) -> Path:
        package, kind, name = (msgtype.split("/") + ["", ""])[:3]
        if kind != "msg" or not name:
            raise UnknownMessageType(f"message type {msgtype!r}: expected 'package/msg/Name'")
        for prefix in self._prefixes:
            candidate = prefix / "share" / package / "msg" / f"{name}.msg"
            if candidate.is_file():
                return candidate
        raise UnknownMessageType(f"message type {msgtype!r} is not in rosbags' type store and no "
                                 f"share/{package}/msg/{name}.msg is installed under AMENT_PREFIX_PATH")


def _named_types(field: tuple) -> list[str]:
    """The message type names a parsed field refers to (directly or as array/sequence elements)."""
    kind, detail = field
    if kind == Nodetype.NAME:
        return [detail]
    if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return _named_types(detail[0])
    return []
