"""Observations as the policy's batch tensors: images resized to the encoder's sizes, state
normalised and padded to the unified size (then the tool poses, when the policy reads them),
instructions wrapped in the embodiment's text prompt.

Training data loaders (vla_core.data) produce the same dictionary, plus `actions` and
`action_mask`, so training and inference share one path into the network.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vla_core.embodiment import EmbodimentSpec
from vla_core.geometry import matrix_to_rot6d
from vla_core.model.configuration import TOOL_POSE_FEATURES, PolicyConfig
from vla_core.normalization import EmbodimentNormalizers


@dataclass
class Observation:
    """What the robot sees and feels at one instant (raw units, as sensors give them).

    Images are (H, W, 3) or (3, H, W) RGB, uint8 in 0..255 or float in [0, 1], any size (the
    policy resizes them).
    main_image: the fixed scene view, the one the vision-language stream reads (None only for a
        policy that reads no view: `privileged_object_pose`).
    state: joint positions in the embodiment's `joint_names` order.
    wrist_images: per wrist camera name (the embodiment profile's cameras of role "wrist").
    history: past main views, oldest first; the "history" structure (RoboVLMs) uses the newest
        k - 1 of them, "one_step" ignores them.
    tool_poses: each arm's (4, 4) end-effector pose in the profile's base frame, forward
        kinematics of `state`; read by policies with `tool_pose_arms`, which then need them.
    joint_velocity: the joints' velocity (rad/s or m/s, `joint_names` order) as
        `backward_velocity` measures it over one control period; read by policies with
        `state_velocity`, which then need it. Training measures it the same way on the
        recorded states, so a driver's own velocity estimate is not what the policy learned.
    object_pose: the true pose of the object the instruction names, (x, y, z) in metres in the
        scene's frame and yaw in radians; only a simulation has it, and only diagnostic policies
        with `privileged_object_pose` read it (instead of the images).
    """

    main_image: np.ndarray | None
    state: np.ndarray
    wrist_images: dict[str, np.ndarray] = field(default_factory=dict)
    history: Sequence[np.ndarray] = ()
    tool_poses: Sequence[np.ndarray] = ()
    joint_velocity: np.ndarray | None = None
    object_pose: np.ndarray | None = None


def backward_velocity(state: np.ndarray, earlier_state: np.ndarray, seconds: float) -> np.ndarray:
    """The joints' velocity as `Observation.joint_velocity` carries it: the change from
    `earlier_state`, measured `seconds` before `state` (one control period), per second.

    A single joint state says where the arm is, not whether it is speeding up towards the cube
    or settling above it; the demonstrations' next motions differ between the two.
    """
    if not seconds > 0:
        raise ValueError(f"a velocity needs two joint states apart in time; got {seconds} s between them")
    return (np.asarray(state, dtype=np.float64) - np.asarray(earlier_state, dtype=np.float64)) / seconds


def image_tensor(image: np.ndarray, size: int, what: str) -> torch.Tensor:
    """One RGB image, (H, W, 3) or (3, H, W), uint8 or float in [0, 1] -> (3, size, size) float32."""
    array = np.asarray(image)
    if array.ndim != 3 or 3 not in (array.shape[0], array.shape[-1]):
        raise ValueError(f"{what} must be one RGB image, (H, W, 3) or (3, H, W), got shape {array.shape}")
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{what} contains NaN or inf")
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ValueError(f"{what} is a float image, so its values must be in [0, 1]; got range "
                             f"[{array.min():.3g}, {array.max():.3g}]")
        tensor = torch.from_numpy(np.ascontiguousarray(array)).float()
    else:
        raise ValueError(f"{what} must be uint8 or float, got dtype {array.dtype}")
    if array.shape[-1] == 3:  # channels last (the ROS and OpenCV layout)
        tensor = tensor.permute(2, 0, 1)
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor[None], size=(size, size), mode="bilinear", align_corners=False,
                               antialias=True)[0]
    return tensor


def main_frames(observation: Observation, frames: int) -> list[tuple[str, np.ndarray]]:
    """The k main views the policy structure reads, oldest first, each with its name for errors."""
    past = list(observation.history)
    if len(past) < frames - 1:
        raise ValueError(f"the policy's 'history' structure reads {frames} main views: it needs {frames - 1} past "
                         f"views in Observation.history, got {len(past)}")
    used = past[len(past) - (frames - 1):] if frames > 1 else []
    first = len(past) - len(used)
    return [*((f"history[{first + i}]", frame) for i, frame in enumerate(used)), ("main_image", observation.main_image)]


def pad_last(tensor: torch.Tensor, size: int) -> torch.Tensor:
    if tensor.shape[-1] > size:
        raise ValueError(f"{tensor.shape[-1]} channels do not fit the unified size {size}")
    return F.pad(tensor, (0, size - tensor.shape[-1]))


def tool_pose_features(config: PolicyConfig, embodiment: EmbodimentSpec, poses: Sequence[np.ndarray]) -> np.ndarray:
    """(9 x tool_pose_arms,) each arm's position (m) and rotation 6D, zero for unused arm slots.

    A joint-angle state leaves the expert to learn forward kinematics before it can turn where
    the cube is in the image into a motion of the tool; the pose says where the tool is and
    which way it points in the frame the fixed camera sees.
    """
    if len(poses) != len(embodiment.arms):
        raise ValueError(f"this policy reads the end-effector pose of every arm: {embodiment.name} has "
                         f"{len(embodiment.arms)} arm(s), the observation has {len(poses)} tool pose(s)")
    features = np.zeros(TOOL_POSE_FEATURES * config.tool_pose_arms)
    for arm, pose in enumerate(poses):
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError(f"tool pose of {embodiment.name} arm {embodiment.arms[arm].name!r} must be a finite "
                             f"(4, 4) transform, got shape {pose.shape}")
        features[TOOL_POSE_FEATURES * arm: TOOL_POSE_FEATURES * (arm + 1)] = np.concatenate(
            [pose[:3, 3], matrix_to_rot6d(pose[:3, :3])])
    return features


def velocity_features(embodiment: EmbodimentSpec, normalizers: EmbodimentNormalizers,
                      observation: Observation) -> np.ndarray:
    """(state_dim,) the joint velocity in normalised state units per second, so a joint's
    velocity reads on the same scale as its position."""
    if observation.joint_velocity is None:
        raise ValueError(f"this policy reads the joints' velocity (state_velocity): the observation of "
                         f"{embodiment.name} needs joint_velocity, {embodiment.state_dim} values")
    velocity = np.asarray(observation.joint_velocity, dtype=np.float64)
    if velocity.shape != (embodiment.state_dim,) or not np.all(np.isfinite(velocity)):
        raise ValueError(f"joint_velocity of {embodiment.name} must be {embodiment.state_dim} finite values "
                         f"({', '.join(embodiment.joint_names)}), got {velocity.tolist()}")
    return normalizers.state.scale_rate(velocity)


def object_pose_features(embodiment: EmbodimentSpec, observation: Observation) -> np.ndarray:
    """(OBJECT_POSE_FEATURES,) the named object's position in decimetres (a few units across the
    workspace, like the normalised joints) and its yaw as sin and cos of four times the angle: a
    cube looks the same every quarter turn, so its grasp does too."""
    if observation.object_pose is None:
        raise ValueError(f"this policy reads the true object pose (privileged_object_pose, a diagnostic): the "
                         f"observation of {embodiment.name} needs object_pose (x, y, z, yaw)")
    pose = np.asarray(observation.object_pose, dtype=np.float64)
    if pose.shape != (4,) or not np.all(np.isfinite(pose)):
        raise ValueError(f"object_pose of {embodiment.name} must be 4 finite values (x, y, z in m, yaw in rad), "
                         f"got {np.ravel(pose).tolist()}")
    return np.concatenate([10.0 * pose[:3], [np.sin(4.0 * pose[3]), np.cos(4.0 * pose[3])]])


def state_features(config: PolicyConfig, embodiment: EmbodimentSpec, normalizers: EmbodimentNormalizers,
                   observation: Observation) -> torch.Tensor:
    """(config.state_features,) the observation's proprioception as the expert reads it: joints
    normalised and padded, then their velocities and the tool poses when the policy reads them."""
    state = np.asarray(observation.state, dtype=np.float64)
    if state.shape != (embodiment.state_dim,):
        raise ValueError(f"state must have {embodiment.state_dim} values for {embodiment.name} "
                         f"({', '.join(embodiment.joint_names)}), got shape {state.shape}")
    if not np.all(np.isfinite(state)):
        raise ValueError(f"state of {embodiment.name} contains NaN or inf: {state.tolist()}")
    joints = pad_last(torch.from_numpy(normalizers.state.normalize(state)).float(), config.max_state_dim)
    if config.state_velocity:
        velocity = pad_last(torch.from_numpy(velocity_features(embodiment, normalizers, observation)).float(),
                            config.max_state_dim)
        joints = torch.cat([joints, velocity])
    if config.tool_pose_arms:
        poses = torch.from_numpy(tool_pose_features(config, embodiment, observation.tool_poses)).float()
        joints = torch.cat([joints, poses])
    return joints


def collate_observations(config: PolicyConfig, embodiment: EmbodimentSpec, normalizers: EmbodimentNormalizers,
                         observations: Sequence[Observation], instructions: Sequence[str]) -> dict:
    """The network's input batch for observations of one embodiment."""
    if len(observations) != len(instructions):
        raise ValueError(f"{len(observations)} observations but {len(instructions)} instructions")
    batch = {
        "texts": [embodiment.text_prompt(instruction) for instruction in instructions],
        "state": torch.stack([state_features(config, embodiment, normalizers, obs) for obs in observations]),
        "embodiments": [embodiment.name] * len(observations),
    }
    if config.privileged_object_pose:  # a diagnostic that reads no view: images, if given, are not looked at
        batch["object_pose"] = torch.stack([torch.from_numpy(object_pose_features(embodiment, obs)).float()
                                            for obs in observations])
    else:
        batch.update(view_tensors(config, embodiment, observations))
    return batch


def view_tensors(config: PolicyConfig, embodiment: EmbodimentSpec, observations: Sequence[Observation]) -> dict:
    """The batch's `main_images` (B, k, 3, S, S), `wrist_images` (B, W, 3, s, s) and `wrist_valid` (B, W)."""
    mains, wrists, wrist_valid = [], [], []
    wrist_names = [camera.name for camera in embodiment.wrist_cameras]
    for observation in observations:
        mains.append(torch.stack([image_tensor(frame, config.image_size, name)
                                  for name, frame in main_frames(observation, config.history_length)]))
        views = torch.zeros(config.max_wrist_views, 3, config.wrist_image_size, config.wrist_image_size)
        valid = torch.zeros(config.max_wrist_views, dtype=torch.bool)
        unknown = sorted(set(observation.wrist_images) - set(wrist_names))
        if unknown:
            raise ValueError(f"wrist images {unknown} are not wrist cameras of {embodiment.name} ({wrist_names})")
        for slot, name in enumerate(wrist_names):
            if name in observation.wrist_images:
                views[slot] = image_tensor(observation.wrist_images[name], config.wrist_image_size,
                                           f"wrist image {name!r}")
                valid[slot] = True
        wrists.append(views)
        wrist_valid.append(valid)
    return {"main_images": torch.stack(mains), "wrist_images": torch.stack(wrists),
            "wrist_valid": torch.stack(wrist_valid)}
