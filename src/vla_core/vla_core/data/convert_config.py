"""What `vla convert` takes from a bag: topics per feature, the timeline, where actions come from.

A mapping starts from the embodiment profile (its cameras' topics, joint_state_topic,
command_topic), then a YAML file (config/convert/*.yaml) and finally command-line values
override it field by field. Profile topics are relative, as ROS names under a namespace are;
`match_topic` finds them among a bag's absolute names.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vla_core.embodiment import EmbodimentSpec

ACTION_SOURCES = ("auto", "command", "next_state")
STAMP_SOURCES = ("header", "receive")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
JOINT_STATE_TYPES = ("sensor_msgs/msg/JointState",)
COMMAND_TYPES = ("trajectory_msgs/msg/JointTrajectory", "sensor_msgs/msg/JointState", "std_msgs/msg/Float64MultiArray")


class ConvertConfigError(ValueError):
    """A mapping value that is not usable; the message names the source and the field."""


@dataclass(frozen=True)
class ConvertConfig:
    """One conversion's mapping. Times are seconds."""

    embodiment: str | None = None
    fps: float | None = None  # None: the profile's control_rate_hz
    max_skew: float = 0.05  # a stream's nearest stamp farther than this from a frame = a gap
    stamps: str = "header"  # header stamps (receive time where a header stamp is zero) or receive times
    action_source: str = "auto"  # auto: the command topic when the bag has it, else the next frame's state
    namespace: str | None = None  # prefix for the profile's relative topics; None: found by suffix
    cameras: dict[str, str] = field(default_factory=dict)  # camera name -> topic (profile's by default)
    joint_state_topic: str | None = None
    command_topic: str | None = None
    action_space: str | None = None  # stored as the dataset's default; None: the profile's
    task: str | None = None  # instruction for bags whose metadata has none
    min_frames: int = 2

    def validate(self, source: str) -> ConvertConfig:
        def fail(name: str, expected: str) -> ConvertConfigError:
            return ConvertConfigError(f"{source}: '{name}' must be {expected}, got {getattr(self, name)!r}")

        if self.fps is not None and not (isinstance(self.fps, (int, float)) and self.fps > 0):
            raise fail("fps", "a number > 0 (or null for the profile's control rate)")
        if not (isinstance(self.max_skew, (int, float)) and self.max_skew > 0):
            raise fail("max_skew", "a number of seconds > 0")
        if self.stamps not in STAMP_SOURCES:
            raise fail("stamps", f"one of {list(STAMP_SOURCES)}")
        if self.action_source not in ACTION_SOURCES:
            raise fail("action_source", f"one of {list(ACTION_SOURCES)}")
        if not isinstance(self.cameras, dict) or not all(isinstance(v, str) for v in self.cameras.values()):
            raise fail("cameras", "a mapping of camera name to topic")
        if not isinstance(self.min_frames, int) or self.min_frames < 1:
            raise fail("min_frames", "an integer >= 1")
        return self

    def with_overrides(self, **values: Any) -> ConvertConfig:
        """A copy with the given fields replaced; None values leave a field as it is."""
        given = {key: value for key, value in values.items() if value is not None}
        cameras = {**self.cameras, **given.pop("cameras", {})}
        return replace(self, cameras=cameras, **given)

    def resolved(self, spec: EmbodimentSpec) -> ConvertConfig:
        """Profile defaults filled in: every camera's topic, the joint-state and command topics, fps."""
        unknown = sorted(set(self.cameras) - {camera.name for camera in spec.cameras})
        if unknown:
            raise ConvertConfigError(f"cameras {unknown} are not in profile {spec.name!r} "
                                     f"(its cameras: {[camera.name for camera in spec.cameras]})")
        return replace(
            self,
            embodiment=spec.name,
            fps=self.fps or spec.control_rate_hz,
            cameras={camera.name: self.cameras.get(camera.name, camera.topic) for camera in spec.cameras},
            joint_state_topic=self.joint_state_topic or spec.joint_state_topic,
            command_topic=self.command_topic or spec.command_topic,
            action_space=self.action_space or spec.action_space,
        )


def load_config(path: Path | None) -> ConvertConfig:
    """A mapping file's values over the defaults (None: the defaults)."""
    if path is None:
        return ConvertConfig()
    path = Path(path)
    if not path.is_file():
        raise ConvertConfigError(f"conversion config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConvertConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConvertConfigError(f"{path}: expected a mapping of conversion settings, got {type(data).__name__}")
    known = {f.name for f in fields(ConvertConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConvertConfigError(f"{path}: unknown field(s) {unknown}; known fields are {sorted(known)}")
    return ConvertConfig(**data).validate(str(path))


def match_topic(wanted: str, available: list[str], namespace: str | None) -> tuple[str | None, list[str]]:
    """The bag topic for a configured name, and the candidates when it is ambiguous.

    Absolute names match exactly. Relative names match `/<namespace>/<name>` when a namespace
    is given, else `/<name>` or, when the bag has exactly one, `/<any namespace>/<name>`.
    """
    if wanted.startswith("/"):
        return (wanted if wanted in available else None), []
    if namespace is not None:
        full = "/" + "/".join(part for part in (namespace.strip("/"), wanted) if part)
        return (full if full in available else None), []
    if "/" + wanted in available:
        return "/" + wanted, []
    candidates = sorted(topic for topic in available if topic.endswith("/" + wanted))
    if len(candidates) == 1:
        return candidates[0], []
    return None, candidates
