"""The message format between the node and a backend's child process: no pickle crosses it.

A message is a frame: 4-byte big-endian length of a UTF-8 JSON header, the header, then the raw
bytes of the arrays the header lists (`"arrays": [{"name", "dtype", "shape"}]`, C order, in
that order). Only plain numeric dtypes are accepted, so a peer can send numbers and text and
nothing that executes on the other side.

This module imports only the standard library and numpy: the child runs it in another
environment (the LeRobot venv) where vla_core is not installed, as a sibling file.
"""
from __future__ import annotations

import json
import socket
import struct
from typing import Any

import numpy as np

DTYPES = ("uint8", "float32", "float64", "int64")
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_BYTES = 1 << 28


class WireError(ConnectionError):
    """The peer closed the connection or sent something that is not a valid frame."""


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        part = sock.recv(min(remaining, 1 << 20))
        if not part:
            raise WireError(f"the peer closed the connection with {remaining} of {size} bytes unread")
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def send_message(sock: socket.socket, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> None:
    """One frame: `header` (JSON-serialisable) and `arrays` (numeric numpy arrays by name)."""
    arrays = arrays or {}
    described, payloads = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.name not in DTYPES:
            raise ValueError(f"array {name!r} has dtype {array.dtype}; the wire carries only {', '.join(DTYPES)}")
        described.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape)})
        payloads.append(array.tobytes())
    encoded = json.dumps({**header, "arrays": described}).encode("utf-8")
    sock.sendall(struct.pack(">I", len(encoded)) + encoded + b"".join(payloads))


def receive_message(sock: socket.socket) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The next frame's header and arrays; WireError on a closed connection or a malformed frame."""
    (length,) = struct.unpack(">I", _receive_exactly(sock, 4))
    if length > MAX_HEADER_BYTES:
        raise WireError(f"a header of {length} bytes is over the {MAX_HEADER_BYTES}-byte limit")
    try:
        header = json.loads(_receive_exactly(sock, length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise WireError(f"the header is not UTF-8 JSON: {error}") from error
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise WireError(f"the header must be a JSON object with an 'arrays' list, got {str(header)[:80]}")
    arrays = {}
    for entry in header.pop("arrays", []):
        try:
            name, dtype, shape = str(entry["name"]), np.dtype(entry["dtype"]), tuple(int(n) for n in entry["shape"])
        except (KeyError, TypeError, ValueError) as error:
            raise WireError(f"array entry {entry!r} needs name, dtype and shape: {error}") from error
        if dtype.name not in DTYPES or any(n < 0 for n in shape):
            raise WireError(f"array {name!r}: dtype {dtype} shape {shape} not accepted (dtypes {', '.join(DTYPES)})")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size > MAX_ARRAY_BYTES:
            raise WireError(f"array {name!r} of {size} bytes is over the {MAX_ARRAY_BYTES}-byte limit")
        arrays[name] = np.frombuffer(_receive_exactly(sock, size), dtype=dtype).reshape(shape)
    return header, arrays
