"""SE(3) and rotation conversions in float64, on scipy's Rotation.

Conventions used throughout vla_ros:
- a pose is a 4x4 homogeneous transform T = [[R, p], [0, 1]] mapping points of the child
  frame into the parent (base) frame;
- quaternions are (x, y, z, w), the order of ROS messages and scipy;
- rotate-6D (Zhou et al. 2019, used by X-VLA) is the first two columns of R, stacked column
  by column: (R00, R10, R20, R01, R11, R21). It is continuous, unlike quaternions and Euler
  angles, and turns back into a rotation by Gram-Schmidt;
- axis-angle is the rotation vector (axis x angle, radians).
Every function accepts leading batch dimensions.

scipy is imported by the functions that use it, not with this module: `vla_core.actions` and
the embodiment profiles import this module, and scipy's import (about 0.4 s) would otherwise be
paid at start-up by commands that never convert a rotation (`vla convert` before its first read).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.spatial.transform import Rotation


def _rotation_class() -> type[Rotation]:
    from scipy.spatial.transform import Rotation

    return Rotation


def _batched_rotation(matrices: np.ndarray) -> tuple[Rotation, tuple[int, ...]]:
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.shape[-2:] != (3, 3):
        raise ValueError(f"expected rotation matrices (..., 3, 3), got shape {matrices.shape}")
    batch = matrices.shape[:-2]
    return _rotation_class().from_matrix(matrices.reshape(-1, 3, 3)), batch


def quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    quat = np.asarray(quat_xyzw, dtype=np.float64)
    if quat.shape[-1] != 4:
        raise ValueError(f"expected quaternions (..., 4) in x, y, z, w order, got shape {quat.shape}")
    return _rotation_class().from_quat(quat.reshape(-1, 4)).as_matrix().reshape(*quat.shape[:-1], 3, 3)


def matrix_to_quat(matrices: np.ndarray) -> np.ndarray:
    rotation, batch = _batched_rotation(matrices)
    return rotation.as_quat().reshape(*batch, 4)


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    rotvec = np.asarray(rotvec, dtype=np.float64)
    if rotvec.shape[-1] != 3:
        raise ValueError(f"expected rotation vectors (..., 3), got shape {rotvec.shape}")
    return _rotation_class().from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(*rotvec.shape[:-1], 3, 3)


def matrix_to_axis_angle(matrices: np.ndarray) -> np.ndarray:
    rotation, batch = _batched_rotation(matrices)
    return rotation.as_rotvec().reshape(*batch, 3)


def matrix_to_rot6d(matrices: np.ndarray) -> np.ndarray:
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.shape[-2:] != (3, 3):
        raise ValueError(f"expected rotation matrices (..., 3, 3), got shape {matrices.shape}")
    return np.concatenate([matrices[..., :, 0], matrices[..., :, 1]], axis=-1)


def rot6d_to_matrix(rot6d: np.ndarray) -> np.ndarray:
    """Gram-Schmidt: the nearest rotation whose first two columns span the given vectors."""
    rot6d = np.asarray(rot6d, dtype=np.float64)
    if rot6d.shape[-1] != 6:
        raise ValueError(f"expected rotate-6D vectors (..., 6), got shape {rot6d.shape}")
    a, b = rot6d[..., :3], rot6d[..., 3:]
    norm_a = np.linalg.norm(a, axis=-1, keepdims=True)
    if np.any(norm_a < 1e-12):
        raise ValueError("rotate-6D vector has a zero first column")
    x = a / norm_a
    b = b - np.sum(x * b, axis=-1, keepdims=True) * x
    norm_b = np.linalg.norm(b, axis=-1, keepdims=True)
    if np.any(norm_b < 1e-12):
        raise ValueError("rotate-6D vector has parallel columns")
    y = b / norm_b
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def make_transform(position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    position = np.asarray(position, dtype=np.float64)
    rotation = np.asarray(rotation, dtype=np.float64)
    transform = np.zeros((*position.shape[:-1], 4, 4))
    transform[..., :3, :3] = rotation
    transform[..., :3, 3] = position
    transform[..., 3, 3] = 1.0
    return transform


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """Exact inverse of a rigid transform: [[R^T, -R^T p], [0, 1]]."""
    transform = np.asarray(transform, dtype=np.float64)
    rotation_t = np.swapaxes(transform[..., :3, :3], -1, -2)
    position = -np.einsum("...ij,...j->...i", rotation_t, transform[..., :3, 3])
    return make_transform(position, rotation_t)


def pose7_to_transform(pose: np.ndarray) -> np.ndarray:
    """(..., 7) x, y, z, qx, qy, qz, qw (geometry_msgs/Pose order) -> (..., 4, 4)."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] != 7:
        raise ValueError(f"expected poses (..., 7) as x, y, z, qx, qy, qz, qw, got shape {pose.shape}")
    return make_transform(pose[..., :3], quat_to_matrix(pose[..., 3:]))


def transform_to_pose7(transform: np.ndarray) -> np.ndarray:
    transform = np.asarray(transform, dtype=np.float64)
    return np.concatenate([transform[..., :3, 3], matrix_to_quat(transform[..., :3, :3])], axis=-1)


def rotation_angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (radians) between rotation matrices a and b."""
    relative = np.swapaxes(np.asarray(a), -1, -2) @ np.asarray(b)
    cos = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(cos, -1.0, 1.0))
