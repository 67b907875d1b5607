"""Camera images as (height, width, 3) uint8 RGB arrays: sensor_msgs/Image and CompressedImage
payloads decoded with no ROS import, and resizing.

One decoder for every place images arrive: the policy node's live topics (through its thin
adapter, `vla_policy_node.image_conversion`), the rosbag2 converter and the recorder's tests.
It works on any object with the message's fields: rclpy messages, rosbags' deserialised
messages, hand-built stand-ins. Raw encodings: rgb8, bgr8, rgba8, bgra8 and mono8, with row
padding (`step` larger than width x channels) honoured; compressed: jpeg (libjpeg-turbo through
simplejpeg, Pillow where it refuses one) and png through Pillow.
Every refusal says what was expected.

A message's size is a claim by its sender: a 30 000 x 30 000 PNG header fits in a few hundred
bytes and would take gigabytes to decode. Both decoders take a pixel budget (`max_pixels`) and
refuse an image that claims more before decoding it, and any failure of the decoder itself is an
`ImageConversionError`, so a caller that counts refusals never sees anything else.
"""
from __future__ import annotations

import io
from typing import Protocol

import numpy as np

# encoding -> (channels, the channel slice that gives R, G, B: a view, so only one copy is made)
_ENCODINGS: dict[str, tuple[int, slice]] = {
    "rgb8": (3, slice(0, 3)),
    "bgr8": (3, slice(2, None, -1)),
    "rgba8": (4, slice(0, 3)),
    "bgra8": (4, slice(2, None, -1)),
    "mono8": (1, slice(0, 1)),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)
DEFAULT_MAX_PIXELS = 4096 * 4096  # far beyond any policy camera, far below what would exhaust memory
JPEG_START = b"\xff\xd8"  # start-of-image marker


class ImageMessage(Protocol):
    height: int
    width: int
    encoding: str
    step: int
    data: bytes


class CompressedImageMessage(Protocol):
    format: str
    data: bytes


class ImageConversionError(ValueError):
    """An image message that cannot be turned into an RGB array; the message says why."""


def _check_budget(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise ImageConversionError(f"{what} is {width}x{height} = {width * height} pixels, over the budget of "
                                   f"{max_pixels} pixels; refused before decoding")


def image_to_rgb(msg: ImageMessage, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(height, width, 3) uint8 RGB from a raw image message."""
    if msg.encoding not in _ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {msg.encoding!r}; expected one of {', '.join(SUPPORTED_ENCODINGS)}")
    channels, rgb = _ENCODINGS[msg.encoding]
    if msg.height <= 0 or msg.width <= 0:
        raise ImageConversionError(f"image is {msg.width}x{msg.height}: width and height must be positive")
    _check_budget(msg.width, msg.height, max_pixels, "image")
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageConversionError(f"step {msg.step} is smaller than width x channels = {row_bytes} for {msg.encoding}")
    buffer = _as_bytes(msg.data)
    expected = msg.step * msg.height
    if buffer.size != expected:
        raise ImageConversionError(
            f"image data has {buffer.size} bytes, expected step x height = {msg.step} x {msg.height} = {expected}")
    pixels = buffer.reshape(msg.height, msg.step)[:, :row_bytes].reshape(msg.height, msg.width, channels)[:, :, rgb]
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def _as_bytes(data: object) -> np.ndarray:
    """uint8 view of a message's data field (bytes, array.array, numpy array or a list)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)  # type: ignore[arg-type]
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def compressed_to_rgb(msg: CompressedImageMessage, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(height, width, 3) uint8 RGB from a jpeg or png CompressedImage.

    A JPEG is decoded by libjpeg-turbo straight into an array (`_jpeg_to_rgb`) and anything else,
    or a JPEG it refuses, by Pillow. Both read the header first, so the claimed size is checked
    against `max_pixels` before any pixel is decoded; Pillow's own bomb check (which raises for
    claims far beyond its limit while opening) is refused the same way."""
    buffer = _as_bytes(msg.data)
    what = f"compressed image (format {msg.format!r}, {buffer.size} bytes)"
    if bytes(buffer[:2]) == JPEG_START:
        image = _jpeg_to_rgb(buffer, max_pixels, what)
        if image is not None:
            return image
    from PIL import Image

    try:
        with Image.open(io.BytesIO(buffer.tobytes()), formats=("JPEG", "PNG")) as image:
            _check_budget(image.width, image.height, max_pixels, what)
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))  # RGB: no extra copy
    except ImageConversionError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageConversionError(f"{what} claims more pixels than the budget of {max_pixels}; refused before "
                                   f"decoding ({error})") from error
    except Exception as error:  # noqa: BLE001 - whatever a damaged payload makes the decoder raise is a bad image
        raise ImageConversionError(f"{what} does not decode as jpeg or png: {type(error).__name__}: {error}") from error


def _jpeg_to_rgb(buffer: np.ndarray, max_pixels: int, what: str) -> np.ndarray | None:
    """RGB from a JPEG by simplejpeg (libjpeg-turbo, accurate DCT and fancy upsampling, as Pillow
    decodes: the same pixels) in about 60% of Pillow's CPU time, which parses the markers in Python
    and decodes through a 4-byte-per-pixel image. None for a file it refuses (damaged, cut short:
    libjpeg's warnings count as errors here) or whose colours are not YCbCr or grey (CMYK): Pillow
    then decides about it."""
    import simplejpeg

    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(buffer)
    except ValueError:
        return None
    _check_budget(width, height, max_pixels, what)
    if colorspace not in ("YCbCr", "Gray"):  # CMYK and YCCK: simplejpeg converts them its own way, Pillow differs
        return None
    try:
        return simplejpeg.decode_jpeg(buffer, colorspace="RGB", fastdct=False, fastupsample=False, strict=True)
    except ValueError:
        return None


def message_to_rgb(msg: ImageMessage | CompressedImageMessage, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Either message kind: CompressedImage has `format`, Image has `encoding`."""
    return image_to_rgb(msg, max_pixels) if hasattr(msg, "encoding") else compressed_to_rgb(msg, max_pixels)


def resize_rgb(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize to width x height; the image itself when it already has that size."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
