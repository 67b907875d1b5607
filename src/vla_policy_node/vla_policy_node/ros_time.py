"""Conversions between ROS time messages and float seconds (the unit vla_core works in)."""
from __future__ import annotations

import math

from builtin_interfaces.msg import Duration, Time

_NS = 1_000_000_000


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec / _NS


def seconds_to_stamp(seconds: float) -> Time:
    total = _to_nanoseconds(seconds, "stamp")
    return Time(sec=total // _NS, nanosec=total % _NS)


def duration_to_seconds(duration: Duration) -> float:
    return duration.sec + duration.nanosec / _NS


def seconds_to_duration(seconds: float) -> Duration:
    total = _to_nanoseconds(seconds, "duration")
    return Duration(sec=total // _NS, nanosec=total % _NS)


def _to_nanoseconds(seconds: float, what: str) -> int:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite, non-negative number of seconds, got {seconds}")
    return round(seconds * _NS)
