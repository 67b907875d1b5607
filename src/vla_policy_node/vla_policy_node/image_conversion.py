"""The policy node's image input: sensor_msgs/Image and CompressedImage messages to RGB arrays.

A thin adapter over `vla_core.images`, which decodes the message fields without importing ROS
(the bag converter uses the same code). What this module adds is ROS-side: cv_bridge, when a
ROS install provides it, converts the raw encodings instead. Refusals are
`ImageConversionError`s naming the encoding and the supported list, or the byte counts that do
not add up.
"""
from __future__ import annotations

import numpy as np
from vla_core.images import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_ENCODINGS,
    CompressedImageMessage,
    ImageConversionError,
    ImageMessage,
    message_to_rgb,
)

__all__ = ["ImageConversionError", "ImageConverter"]


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

    def __init__(self, use_cv_bridge: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._bridge = _cv_bridge_converter() if use_cv_bridge else None
        self.max_pixels = max_pixels

    @property
    def backend(self) -> str:
        return "cv_bridge" if self._bridge is not None else "numpy"

    def convert(self, msg: ImageMessage | CompressedImageMessage) -> np.ndarray:
        """(height, width, 3) uint8 RGB; raises ImageConversionError saying why not, and nothing else."""
        if self._bridge is not None and getattr(msg, "encoding", None) in SUPPORTED_ENCODINGS \
                and msg.width * msg.height <= self.max_pixels:
            try:
                return self._bridge(msg)
            except Exception as error:  # noqa: BLE001 - cv_bridge raises its own error types for bad buffers
                raise ImageConversionError(f"cv_bridge could not convert the {msg.encoding} image: {error}") from error
        return message_to_rgb(msg, self.max_pixels)
