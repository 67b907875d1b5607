"""sensor_msgs/Image and CompressedImage to RGB arrays, without cv_bridge when it is absent.

cv_bridge is used when importable (a ROS install has it); otherwise this module's converter
handles the encodings cameras publish for VLA inputs: rgb8, bgr8, rgba8, bgra8 and mono8, with
row padding (`step` larger than width x channels) honoured. Compressed images (jpeg, png) are
decoded with Pillow. Every refusal names the topic-independent reason: the encoding and the
supported list, or the byte counts that do not add up.
"""
from __future__ import annotations

import io
from typing import Protocol

import numpy as np

# encoding -> (channels, indices that give R, G, B)
_ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


class ImageMessage(Protocol):
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


class CompressedImageMessage(Protocol):
    format: str
    data: bytes


class ImageConversionError(ValueError):
    """An image message that cannot be turned into an RGB array; the message says why."""


def image_to_rgb(msg: ImageMessage) -> np.ndarray:
    """(height, width, 3) uint8 RGB from a raw image message."""
    if msg.encoding not in _ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {msg.encoding!r}; expected one of {', '.join(SUPPORTED_ENCODINGS)}"
        )
    channels, rgb = _ENCODINGS[msg.encoding]
    row_bytes = msg.width * channels
    if msg.height <= 0 or msg.width <= 0:
        raise ImageConversionError(f"image is {msg.width}x{msg.height}: width and height must be positive")
    if msg.step < row_bytes:
        raise ImageConversionError(
            f"step {msg.step} is smaller than width x channels = {row_bytes} for {msg.encoding}"
        )
    expected = msg.step * msg.height
    buffer = _as_bytes(msg.data)
    if buffer.size != expected:
        raise ImageConversionError(
            f"image data has {buffer.size} bytes, expected step x height = {msg.step} x {msg.height} = {expected}"
        )
    rows = buffer.reshape(msg.height, msg.step)[:, :row_bytes]
    pixels = rows.reshape(msg.height, msg.width, channels)
    return np.ascontiguousarray(pixels[:, :, list(rgb)])


def _as_bytes(data: object) -> np.ndarray:
    """uint8 view of a message's data field (bytes or array.array in rclpy, a list when built by hand)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)  # type: ignore[arg-type]
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def compressed_to_rgb(msg: CompressedImageMessage) -> np.ndarray:
    """(height, width, 3) uint8 RGB from a jpeg or png CompressedImage."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(msg.data))) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise ImageConversionError(
            f"compressed image (format {msg.format!r}, {len(msg.data)} bytes) does not decode as jpeg or png: {error}"
        ) from error


def _cv_bridge_converter():
    """cv_bridge's imgmsg_to_cv2 (RGB output) when a ROS install provides it, else None."""
    try:
        from cv_bridge import CvBridge  # type: ignore[import-not-found]
    except ImportError:
        return None
    bridge = CvBridge()
    return lambda msg: np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))


class ImageConverter:
    """Converts both message kinds; prefers cv_bridge for raw images when it is installed."""

    def __init__(self, use_cv_bridge: bool = True) -> None:
        self._bridge = _cv_bridge_converter() if use_cv_bridge else None

    @property
    def backend(self) -> str:
        return "cv_bridge" if self._bridge is not None else "numpy"

    def convert(self, msg: ImageMessage | CompressedImageMessage) -> np.ndarray:
        if hasattr(msg, "encoding"):
            if self._bridge is not None and msg.encoding in _ENCODINGS:
                return self._bridge(msg)
            return image_to_rgb(msg)
        return compressed_to_rgb(msg)
