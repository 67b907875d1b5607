"""Embodiment profiles: what a robot looks like to the policy, read from YAML in config/embodiments/
(shipped inside vla_core; `vla_core.config_files` finds them).

What differs between robots is data, not branches in the model (openpi's lesson): joint names,
the robot model file, frames, control rate, chunk size, action space, cameras and the robot tag
of Qwen-VLA's text prompt all live in a profile.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from vla_core.actions import ACTION_SPACES, get_action_space
from vla_core.config_files import config_names, find_config_file

CAMERA_ROLES = ("main", "wrist")
PROMPT_TEMPLATE = (
    "The robot is {tag} with {arms}. The control frequency is {fps} Hz. "
    "Please predict the next {horizon} control actions to execute the following task: {instruction}"
)


class ProfileError(ValueError):
    """A profile field with a bad value; the message names the file, the field and what was expected."""


@dataclass(frozen=True)
class CameraSpec:
    name: str
    topic: str
    role: str  # "main" (fixed scene view, through the vision-language encoder) or "wrist"
    width: int = 224
    height: int = 224


@dataclass(frozen=True)
class ArmSpec:
    name: str
    joint_names: tuple[str, ...]
    ee_frame: str
    gripper_joint: str | None = None
    # gripper joint positions for the binary channel (1 = closed); None = the joint's lower
    # (closed) and upper (open) limit from the robot model
    gripper_open: float | None = None
    gripper_closed: float | None = None


@dataclass(frozen=True)
class EmbodimentSpec:
    name: str
    robot_tag: str
    arms: tuple[ArmSpec, ...]
    robot_model: str  # URDF or MJCF path; "pkg://<python package>/<path>" is resolved on load
    base_frame: str
    control_rate_hz: float
    chunk_size: int
    action_space: str
    cameras: tuple[CameraSpec, ...]
    joint_state_topic: str = "joint_states"  # relative, so a namespace applies
    command_topic: str = "joint_trajectory_controller/joint_trajectory"
    # X-VLA (LeRobot's `xvla`) keeps one soft prompt per training domain and picks it by this id;
    # the robot, not the checkpoint, decides which one applies (None: not set, refused for X-VLA)
    xvla_domain_id: int | None = None
    source: str = field(default="", compare=False)  # the file it came from, for error messages

    # ---- derived -------------------------------------------------------------------------
    @property
    def is_bimanual(self) -> bool:
        return len(self.arms) == 2

    @property
    def has_gripper(self) -> bool:
        return all(arm.gripper_joint for arm in self.arms)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Arm joints then gripper joint, arm by arm: the proprioceptive state's order."""
        names: list[str] = []
        for arm in self.arms:
            names += list(arm.joint_names) + ([arm.gripper_joint] if arm.gripper_joint else [])
        return tuple(names)

    @property
    def state_dim(self) -> int:
        return len(self.joint_names)

    @property
    def channel_names(self) -> tuple[str, ...]:
        space = get_action_space(self.action_space)
        names: list[str] = []
        for arm in self.arms:
            names += space.arm_channel_names(arm.name, arm.joint_names, self.has_gripper)
        return tuple(names)

    @property
    def action_dim(self) -> int:
        return len(self.channel_names)

    @property
    def gripper_channels(self) -> tuple[int, ...]:
        return tuple(i for i, name in enumerate(self.channel_names) if name.endswith("/gripper"))

    @property
    def main_camera(self) -> CameraSpec:
        return next(camera for camera in self.cameras if camera.role == "main")

    @property
    def wrist_cameras(self) -> tuple[CameraSpec, ...]:
        return tuple(camera for camera in self.cameras if camera.role == "wrist")

    def robot_model_path(self) -> Path:
        return resolve_model_path(self.robot_model)

    def text_prompt(self, instruction: str) -> str:
        """Qwen-VLA's embodiment prompt around the instruction."""
        fps = f"{self.control_rate_hz:g}"
        arms = "dual arms" if self.is_bimanual else "single arm"
        return PROMPT_TEMPLATE.format(tag=self.robot_tag, arms=arms, fps=fps, horizon=self.chunk_size,
                                      instruction=instruction.strip())

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source")
        if data["xvla_domain_id"] is None:  # unset: files written before the field existed stay the same
            data.pop("xvla_domain_id")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> EmbodimentSpec:
        return _parse(data, source)


def resolve_model_path(reference: str) -> Path:
    """A model file path; `pkg://package/relative/path` points inside an installed Python package."""
    if reference.startswith("pkg://"):
        package, _, relative = reference[len("pkg://"):].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"robot model {reference}: Python package {package!r} is not installed")
        path = Path(list(spec.submodule_search_locations)[0]) / relative
    else:
        path = Path(reference).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"robot model {reference} does not exist ({path})")
    return path


def _parse(data: dict[str, Any], source: str) -> EmbodimentSpec:
    def fail(field_name: str, expected: str, got: Any) -> ProfileError:
        return ProfileError(f"{source}: field '{field_name}' must be {expected}, got {got!r}")

    if not isinstance(data, dict):
        raise ProfileError(f"{source}: an embodiment profile must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(EmbodimentSpec)} - {"source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{source}: unknown field(s) {unknown}; known fields are {sorted(known)}")
    required = ("name", "robot_tag", "arms", "robot_model", "base_frame", "control_rate_hz", "chunk_size",
                "action_space", "cameras")
    missing = [name for name in required if name not in data]
    if missing:
        raise ProfileError(f"{source}: missing field(s) {missing}")
    if data["action_space"] not in ACTION_SPACES:
        raise fail("action_space", f"one of {list(ACTION_SPACES)}", data["action_space"])
    rate = data["control_rate_hz"]
    if not isinstance(rate, (int, float)) or rate <= 0:
        raise fail("control_rate_hz", "a number > 0", rate)
    if not isinstance(data["chunk_size"], int) or data["chunk_size"] < 1:
        raise fail("chunk_size", "an integer >= 1", data["chunk_size"])
    arms_data = data["arms"]
    if not isinstance(arms_data, list) or not 1 <= len(arms_data) <= 2:
        raise fail("arms", "a list of one or two arms", arms_data)
    arms = []
    for i, arm in enumerate(arms_data):
        if not isinstance(arm, dict) or not {"name", "joint_names", "ee_frame"} <= set(arm):
            raise fail(f"arms[{i}]", "a mapping with name, joint_names, ee_frame (and gripper_joint, "
                       "gripper_open, gripper_closed)", arm)
        if not arm["joint_names"] or not all(isinstance(j, str) for j in arm["joint_names"]):
            raise fail(f"arms[{i}].joint_names", "a non-empty list of joint names", arm["joint_names"])
        for key in ("gripper_open", "gripper_closed"):
            if arm.get(key) is not None and not isinstance(arm[key], (int, float)):
                raise fail(f"arms[{i}].{key}", "a joint position (number)", arm[key])
        arms.append(ArmSpec(arm["name"], tuple(arm["joint_names"]), arm["ee_frame"], arm.get("gripper_joint"),
                            arm.get("gripper_open"), arm.get("gripper_closed")))
    grippers = {arm.gripper_joint is None for arm in arms}
    if len(grippers) > 1:
        raise fail("arms", "arms that all have a gripper_joint or none has", [a.gripper_joint for a in arms])
    cameras = []
    for i, camera in enumerate(data["cameras"] or []):
        if not isinstance(camera, dict) or not {"name", "topic", "role"} <= set(camera):
            raise fail(f"cameras[{i}]", "a mapping with name, topic, role (and width, height)", camera)
        if camera["role"] not in CAMERA_ROLES:
            raise fail(f"cameras[{i}].role", f"one of {list(CAMERA_ROLES)}", camera["role"])
        cameras.append(CameraSpec(camera["name"], camera["topic"], camera["role"],
                                  int(camera.get("width", 224)), int(camera.get("height", 224))))
    if sum(camera.role == "main" for camera in cameras) != 1:
        raise fail("cameras", "a list with exactly one camera of role 'main'", [c.role for c in cameras])
    optional = {k: data[k] for k in ("joint_state_topic", "command_topic") if k in data}
    domain = data.get("xvla_domain_id")
    if domain is not None:
        if isinstance(domain, bool) or not isinstance(domain, int) or domain < 0:
            raise fail("xvla_domain_id", "an integer >= 0 (the X-VLA soft prompt's domain id)", domain)
        optional["xvla_domain_id"] = domain
    return EmbodimentSpec(
        name=str(data["name"]), robot_tag=str(data["robot_tag"]), arms=tuple(arms),
        robot_model=str(data["robot_model"]), base_frame=str(data["base_frame"]),
        control_rate_hz=float(rate), chunk_size=data["chunk_size"], action_space=data["action_space"],
        cameras=tuple(cameras), source=source, **optional,
    )


def available_embodiments() -> list[str]:
    """The profile names `load_embodiment` accepts bare (config/embodiments/*.yaml, see vla_core.config_files)."""
    return config_names("embodiments")


def load_embodiment(name_or_path: str | os.PathLike[str]) -> EmbodimentSpec:
    """A profile by file path, or by bare name from config/embodiments (`vla_core.config_files`)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        try:
            path = find_config_file(f"embodiments/{path.name}.yaml")
        except FileNotFoundError as error:
            raise FileNotFoundError(f"no embodiment profile named {str(name_or_path)!r}; "
                                    f"available: {available_embodiments()} ({error})") from None
    if not path.is_file():
        raise FileNotFoundError(f"embodiment profile {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(f"{path}: not valid YAML: {error}") from error
    return _parse(data, str(path))


def require_trained_profile(checkpoint: str, trained: dict[str, EmbodimentSpec], profile: EmbodimentSpec) -> None:
    """Raise unless `checkpoint` was trained for `profile`'s robot in the same action space, chunk
    size and arms: the executor decodes every chunk with the profile, so a checkpoint trained in
    another space or horizon would be mis-decoded, not merely worse."""
    if profile.name not in trained:
        raise ValueError(f"checkpoint {checkpoint} was trained for {sorted(trained)}, not for "
                         f"embodiment {profile.name!r}")
    as_trained = trained[profile.name]
    for name in ("action_space", "chunk_size", "arms"):
        if getattr(as_trained, name) != getattr(profile, name):
            raise ValueError(f"checkpoint {checkpoint} has {name} {getattr(as_trained, name)!r} for "
                             f"{profile.name}, the profile {profile.source} has {getattr(profile, name)!r}")
