"""The policy node's image input (vla_policy_node.image_conversion over vla_core.images): real
sensor_msgs images of every supported encoding, padded rows and compressed formats to RGB."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PilImage
from sensor_msgs.msg import CompressedImage, Image
from vla_policy_node.image_conversion import ImageConversionError, ImageConverter

CONVERTER = ImageConverter(use_cv_bridge=False)  # the numpy path, whether or not cv_bridge is installed

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def raw_message(encoding: str, pixels: np.ndarray, padding: int = 0) -> Image:
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), 255, np.uint8)], axis=1)
    return Image(height=height, width=width, encoding=encoding, step=padded.shape[1], data=padded.tobytes())


@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize(
    "encoding, pixels, expected",
    [
        ("rgb8", RGB, RGB),
        ("bgr8", RGB[:, :, ::-1], RGB),
        ("rgba8", np.dstack([RGB, np.zeros((5, 7), np.uint8)]), RGB),
        ("bgra8", np.dstack([RGB[:, :, ::-1], np.zeros((5, 7), np.uint8)]), RGB),
        ("mono8", RGB[:, :, 0], np.repeat(RGB[:, :, :1], 3, axis=2)),
    ],
)
def test_raw_encodings_with_and_without_row_padding(encoding, pixels, expected, padding) -> None:
    converted = CONVERTER.convert(raw_message(encoding, pixels, padding))
    assert converted.dtype == np.uint8 and converted.shape == (5, 7, 3)
    np.testing.assert_array_equal(converted, expected)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_images_decode(fmt: str) -> None:
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (24, 1, 3))
    buffer = io.BytesIO()
    PilImage.fromarray(smooth).save(buffer, format=fmt.upper())
    converted = CONVERTER.convert(CompressedImage(format=fmt, data=buffer.getvalue()))
    assert converted.shape == (24, 32, 3)
    tolerance = 0 if fmt == "png" else 8
    assert np.abs(converted.astype(int) - smooth.astype(int)).max() <= tolerance


@pytest.mark.parametrize(
    "message, error",
    [
        (Image(height=2, width=2, encoding="16UC1", step=4, data=bytes(8)), "unsupported image encoding '16UC1'"),
        (Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(5)), "has 5 bytes, expected step x height = 6 x 2 = 12"),
        (Image(height=2, width=2, encoding="rgb8", step=4, data=bytes(8)), "step 4 is smaller than width x channels = 6"),
        (Image(height=0, width=2, encoding="rgb8", step=6, data=b""), "width and height must be positive"),
    ],
)
def test_bad_raw_images_are_refused_with_the_reason(message: Image, error: str) -> None:
    with pytest.raises(ImageConversionError, match=error.replace("(", r"\(").replace(")", r"\)")):
        CONVERTER.convert(message)


def test_garbage_compressed_data_is_refused() -> None:
    with pytest.raises(ImageConversionError, match="format 'jpeg', 4 bytes"):
        CONVERTER.convert(CompressedImage(format="jpeg", data=b"\x00\x01\x02\x03"))
