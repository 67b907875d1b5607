"""JPEG images decode through libjpeg-turbo directly (simplejpeg) to exactly the pixels Pillow gives
(the dataset a conversion writes must not change, issue 36); what it refuses, Pillow decides."""
from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from vla_core.images import ImageConversionError, compressed_to_rgb

RNG = np.random.default_rng(3)


def jpeg(pixels: np.ndarray, mode: str = "RGB", **options: object) -> SimpleNamespace:
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="JPEG", **options)
    return SimpleNamespace(format="jpeg", data=buffer.getvalue())


def pillow_rgb(message: SimpleNamespace) -> np.ndarray:
    with Image.open(io.BytesIO(message.data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("options", [
    {"quality": 90}, {"quality": 75, "subsampling": 0}, {"quality": 95, "subsampling": 1},
    {"quality": 85, "progressive": True}, {"quality": 90, "optimize": True}])
def test_jpegs_decode_to_pillows_pixels(options: dict) -> None:
    noise = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sizes: partial blocks and chroma pairs
    smooth = np.repeat(np.linspace(0, 255, 53, dtype=np.uint8)[None, :, None], 37, axis=0).repeat(3, axis=2)
    for pixels in (noise, smooth):
        message = jpeg(pixels, **options)
        assert np.array_equal(compressed_to_rgb(message), pillow_rgb(message))
    gray = jpeg(noise, mode="L", quality=90)
    assert np.array_equal(compressed_to_rgb(gray), pillow_rgb(gray))


def test_jpegs_libjpeg_turbo_refuses_are_left_to_pillow() -> None:
    noise = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    cmyk = jpeg(noise, mode="CMYK", quality=90)  # libjpeg-turbo does not convert CMYK to RGB; Pillow does
    assert np.array_equal(compressed_to_rgb(cmyk), pillow_rgb(cmyk))
    cut = SimpleNamespace(format="jpeg", data=jpeg(noise).data[:-40])
    with pytest.raises(ImageConversionError, match="does not decode as jpeg or png"):
        compressed_to_rgb(cut)
    with pytest.raises(ImageConversionError, match="over the budget of 100 pixels; refused before decoding"):
        compressed_to_rgb(jpeg(noise), max_pixels=100)
