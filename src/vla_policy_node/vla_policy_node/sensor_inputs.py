"""Sensor messages to the arrays vla_core works with, refusing what does not fit the embodiment.

Both nodes read joint states; the policy node also reads cameras. A refusal raises
`InputError` with a message that names the topic, what was wrong and what was expected, so a
node can count it, report it in PolicyStatus and keep running.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .image_conversion import ImageConversionError, ImageConverter


class InputError(ValueError):
    """A sensor message the node refused; `cause` is the short counter key for PolicyStatus."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


class JointStateReader:
    """JointState -> positions in a fixed joint order, matched by name (any order, extras ignored)."""

    def __init__(self, joint_names: Sequence[str], topic: str) -> None:
        self.joint_names = tuple(joint_names)
        self.topic = topic

    def read(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        if len(names) != len(positions):
            raise InputError("malformed_joint_state", f"joint state on {self.topic} has {len(names)} names but "
                                                      f"{len(positions)} positions")
        index = {name: i for i, name in enumerate(names)}
        if len(index) != len(names):  # which of two values is the joint's is a guess: refuse, do not guess
            repeated = sorted({name for name in names if list(names).count(name) > 1})
            raise InputError("duplicate_joint_names", f"joint state on {self.topic} names joints {repeated} more "
                                                      "than once; expected each joint once")
        missing = [name for name in self.joint_names if name not in index]
        if missing:
            raise InputError("unknown_joint_names",
                             f"joint state on {self.topic} lacks joints {missing} (it has {list(names)}); "
                             f"expected all of {list(self.joint_names)}")
        values = np.array([positions[index[name]] for name in self.joint_names], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = [name for name, value in zip(self.joint_names, values) if not np.isfinite(value)]
            raise InputError("nan_joint_state", f"joint state on {self.topic} has NaN or inf for joints {bad}")
        return values


class CameraReader:
    """Image or CompressedImage -> (height, width, 3) uint8 RGB of the size the profile declares."""

    def __init__(self, name: str, topic: str, width: int, height: int, converter: ImageConverter) -> None:
        self.name = name
        self.topic = topic
        self.width = width
        self.height = height
        self.converter = converter

    def read(self, msg) -> np.ndarray:
        try:
            pixels = self.converter.convert(msg)
        except ImageConversionError as error:
            raise InputError("bad_image", f"camera '{self.name}' on {self.topic}: {error}") from error
        except Exception as error:  # noqa: BLE001 - any decoder failure is this message's fault, not the node's
            raise InputError("bad_image", f"camera '{self.name}' on {self.topic}: the image could not be "
                                          f"decoded ({type(error).__name__}: {error})") from error
        if pixels.shape[:2] != (self.height, self.width):
            raise InputError("wrong_image_size",
                             f"camera '{self.name}' on {self.topic} sent {pixels.shape[1]}x{pixels.shape[0]} "
                             f"images; the embodiment profile expects {self.width}x{self.height}")
        return pixels


def checked_stamp(stamp: float, now: float, tolerance: float, topic: str) -> float:
    """A message's header stamp (seconds) checked against the receiving node's clock.

    A zero stamp (a driver that does not stamp) means "now". A stamp more than `tolerance`
    ahead of the clock is refused: the observation assembler keeps only samples near the newest
    stamp, so one sample from the far future would become the reference and push every real
    sample out until restart. Before the clock has started (use_sim_time without /clock yet)
    no stamp can be judged, so none is taken.
    """
    if now <= 0:
        raise InputError("no_clock", f"message on {topic} refused: the node's clock has not started "
                                     "(use_sim_time is set and nothing has been received on /clock yet)")
    if stamp <= 0:
        return now
    if stamp - now > tolerance:
        raise InputError("future_stamp", f"message on {topic} is stamped {stamp:.3f} s, {stamp - now:.3f} s ahead "
                                         f"of the node's clock ({now:.3f} s); expected at most {tolerance:.3f} s "
                                         "ahead (parameter future_stamp_tolerance)")
    return stamp
