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

    def __init__(self, use_cv_bridge: bool = True) -> None:
        self._bridge = _cv_bridge_converter() if use_cv_bridge else None

    @property
    def backend(self) -> str:
        return "cv_bridge" if self._bridge is not None else "numpy"

    def convert(self, msg: ImageMessage | CompressedImageMessage) -> np.ndarray:
        """(height, width, 3) uint8 RGB; raises ImageConversionError saying why not."""
        if self._bridge is not None and getattr(msg, "encoding", None) in SUPPORTED_ENCODINGS:
            return self._bridge(msg)
        return message_to_rgb(msg)
