"""Forward and inverse kinematics with Pinocchio, from an embodiment's URDF or MJCF model.

URDF files load directly (`pinocchio.buildModelFromUrdf`). MJCF files are compiled by MuJoCo
(which resolves includes and defaults) and the compiled kinematic tree (hinge and slide joints;
free-floating objects skipped) is rebuilt joint by joint as a Pinocchio model, so both formats
give the same Pinocchio API.

IK is damped least squares on the 6-D frame error, seeded from the current joints, one solve
per arm over that arm's joints, with joint limits enforced at every iteration. It stops at the
tolerance or when the joints stop moving: a 5-joint arm (SO-101) cannot reach every
orientation, and iterating at its least-squares optimum only burns control-loop time.

For such an arm the least-squares optimum depends on how metres weigh against radians: with
equal weights a pose whose orientation is slightly off the arm's reachable set (any predicted
pose is) is met by giving up centimetres of position, and the row is refused. The rotation
rows of an arm with fewer than six joints are therefore weighted by
`UNDERACTUATED_ORIENTATION_WEIGHT` (0.1 rad of orientation error costs what 1 cm of position
does): the tool goes where it was sent, pointing as close as the arm allows. Measured with the
shipped checkpoint over 5 closed-loop SO-101 episodes: 44% of chunk rows out of reach with
equal weights, 14% weighted.

A six-joint arm has the opposite problem near a wrist singularity (the ViperX's forearm roll
and wrist rotate axes line up when its wrist angle is near 0): a few hundredths of a radian of
orientation about the lost axis are met exactly by rolling one joint a radian one way and the
other back, and the executor refuses the jump. `anchor_weight` (minimise |J dq - e|^2 plus
anchor_weight |q - seed|^2) makes the solver give up that sliver of orientation instead of
swinging the wrist; with the orientation weighted like an underactuated arm's, the position
stays exact. Measured on the ViperX 0.02 rad from that singularity, asked for 0.05 rad and
1.5 cm: unanchored, 1.1 rad of opposite rolls and an exact pose; anchored (1e-3, orientation
0.1), rolls under 0.03 rad, 0.6 mm and 0.03 rad off. The executor's decoder uses both
(`vla_core.runtime.decoding`); the scripted teleoperators, whose targets are exact, do not.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

from vla_core.embodiment import ArmSpec, EmbodimentSpec


def _model_from_mjcf(path: Path) -> pin.Model:
    import mujoco

    mj = mujoco.MjModel.from_xml_path(str(path))
    model = pin.Model()
    joint_of_body = {0: 0}  # MuJoCo body id -> Pinocchio joint the body is attached to
    placement_in_joint = {0: pin.SE3.Identity()}  # body frame relative to that joint's frame
    for body in range(1, mj.nbody):
        parent = int(mj.body_parentid[body])
        rotation = pin.Quaternion(*mj.body_quat[body]).matrix()  # MuJoCo quat is w, x, y, z
        body_in_parent = pin.SE3(rotation, mj.body_pos[body].copy())
        in_parent_joint = placement_in_joint[parent] * body_in_parent
        joints = [j for j in range(mj.body_jntadr[body], mj.body_jntadr[body] + mj.body_jntnum[body])]
        kinematic = [j for j in joints if mj.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)]
        parent_joint = joint_of_body[parent]
        if not kinematic:
            joint_of_body[body] = parent_joint
            placement_in_joint[body] = in_parent_joint
        for j in kinematic:
            anchor = pin.SE3(np.eye(3), mj.jnt_pos[j].copy())
            axis = mj.jnt_axis[j] / np.linalg.norm(mj.jnt_axis[j])
            joint_model = (pin.JointModelRevoluteUnaligned(*axis) if mj.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE
                           else pin.JointModelPrismaticUnaligned(*axis))
            lower, upper = (mj.jnt_range[j] if mj.jnt_limited[j] else (-np.inf, np.inf))
            parent_joint = model.addJoint(parent_joint, joint_model, in_parent_joint * anchor,
                                          mujoco.mj_id2name(mj, mujoco.mjtObj.mjOBJ_JOINT, j),
                                          np.array([np.inf]), np.array([np.inf]), np.array([lower]),
                                          np.array([upper]))
            in_parent_joint = anchor.inverse()
            joint_of_body[body] = parent_joint
            placement_in_joint[body] = in_parent_joint
        name = mujoco.mj_id2name(mj, mujoco.mjtObj.mjOBJ_BODY, body)
        model.addFrame(pin.Frame(name, joint_of_body[body], placement_in_joint[body], pin.FrameType.BODY))
    return model


def load_pinocchio_model(path: Path) -> pin.Model:
    if path.suffix == ".urdf":
        return pin.buildModelFromUrdf(str(path))
    if path.suffix == ".xml":
        return _model_from_mjcf(path)
    raise ValueError(f"robot model {path} must be a URDF (.urdf) or MJCF (.xml) file")


UNDERACTUATED_ORIENTATION_WEIGHT = 0.1  # m/rad, for arms with fewer than six joints (see above)


@dataclass(frozen=True)
class IKResult:
    joints: np.ndarray  # the arm's joints, within limits
    position_error: float  # metres
    orientation_error: float  # radians
    iterations: int
    converged: bool


class RobotKinematics:
    """FK and IK of an embodiment's arms in its base frame."""

    def __init__(self, spec: EmbodimentSpec) -> None:
        self.spec = spec
        self.model = load_pinocchio_model(spec.robot_model_path())
        self.data = self.model.createData()
        for arm in spec.arms:
            for name in (*arm.joint_names, *([arm.gripper_joint] if arm.gripper_joint else [])):
                if not self.model.existJointName(name):
                    raise ValueError(f"{spec.name}: joint {name!r} is not in {spec.robot_model}")
            if not self.model.existFrame(arm.ee_frame):
                raise ValueError(f"{spec.name}: end-effector frame {arm.ee_frame!r} is not in {spec.robot_model}")
        self._base_frame = self.model.getFrameId(spec.base_frame) if self.model.existFrame(spec.base_frame) else None
        self._q_index = {name: self.model.idx_qs[self.model.getJointId(name)] for name in spec.joint_names}
        self._v_index = {name: self.model.idx_vs[self.model.getJointId(name)] for name in spec.joint_names}
        self._q = pin.neutral(self.model)

    # ---- limits --------------------------------------------------------------------------------
    def position_limits(self, joint_names: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        names = joint_names or self.spec.joint_names
        index = [self._q_index[n] for n in names]
        return self.model.lowerPositionLimit[index].copy(), self.model.upperPositionLimit[index].copy()

    def velocity_limits(self, joint_names: tuple[str, ...] | None = None) -> np.ndarray:
        names = joint_names or self.spec.joint_names
        return self.model.velocityLimit[[self._v_index[n] for n in names]].copy()

    def gripper_positions(self, arm: ArmSpec) -> tuple[float, float]:
        """(open, closed) joint positions of the arm's gripper: the profile's, else the upper and
        lower limit of the gripper joint (both shipped robots close towards the lower limit)."""
        if arm.gripper_joint is None:
            raise ValueError(f"{self.spec.name}: arm {arm.name!r} has no gripper joint")
        lower, upper = self.position_limits((arm.gripper_joint,))
        opened = arm.gripper_open if arm.gripper_open is not None else float(upper[0])
        closed = arm.gripper_closed if arm.gripper_closed is not None else float(lower[0])
        return opened, closed

    # ---- forward kinematics --------------------------------------------------------------------
    def _set(self, state: np.ndarray) -> None:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.spec.state_dim,):
            raise ValueError(f"{self.spec.name} joint state must have {self.spec.state_dim} values "
                             f"({', '.join(self.spec.joint_names)}), got shape {state.shape}")
        for name, value in zip(self.spec.joint_names, state):
            self._q[self._q_index[name]] = value
        pin.framesForwardKinematics(self.model, self.data, self._q)

    def _in_base(self, frame: int) -> np.ndarray:
        world = self.data.oMf[frame]
        if self._base_frame is not None:
            world = self.data.oMf[self._base_frame].actInv(world)
        return world.homogeneous.copy()

    def forward(self, state: np.ndarray) -> list[np.ndarray]:
        """(4, 4) end-effector pose of every arm in the base frame, for the full joint state."""
        self._set(state)
        return [self._in_base(self.model.getFrameId(arm.ee_frame)) for arm in self.spec.arms]

    def forward_many(self, states: np.ndarray) -> np.ndarray:
        """(T, arms, 4, 4): `forward` of each of (T, state_dim) joint states, the same numbers.

        One loop with the joint indices and frames looked up once: a dataset's end-effector poses
        (`vla convert`, 1800 rows a minute at 30 Hz) took about twice as long row by row, at the
        serial end of a conversion."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != self.spec.state_dim:
            raise ValueError(f"{self.spec.name} joint states must be (T, {self.spec.state_dim}) "
                             f"({', '.join(self.spec.joint_names)}), got shape {states.shape}")
        index = np.array([self._q_index[name] for name in self.spec.joint_names])
        frames = [self.model.getFrameId(arm.ee_frame) for arm in self.spec.arms]
        poses = np.empty((len(states), len(frames), 4, 4))
        for row, state in enumerate(states):
            self._q[index] = state
            pin.framesForwardKinematics(self.model, self.data, self._q)
            for arm, frame in enumerate(frames):
                poses[row, arm] = self._in_base(frame)
        return poses

    # ---- inverse kinematics --------------------------------------------------------------------
    def inverse(self, arm: ArmSpec | int, target: np.ndarray, state: np.ndarray, tolerance: float = 1e-5,
                max_iterations: int = 200, damping: float = 1e-4, orientation_weight: float | None = None,
                anchor_weight: float = 0.0) -> IKResult:
        """Joints of one arm reaching `target` (4, 4, base frame), seeded from the full `state`.

        `orientation_weight`: metres per radian of orientation error (default 1, or
        `UNDERACTUATED_ORIENTATION_WEIGHT` for an arm with fewer than six joints);
        `anchor_weight` > 0 pulls the solution towards the seed (see the module docstring)."""
        arm = self.spec.arms[arm] if isinstance(arm, int) else arm
        frame = self.model.getFrameId(arm.ee_frame)
        goal = self._base_pose(state) * pin.SE3(np.asarray(target, dtype=np.float64))
        rotation = orientation_weight if orientation_weight is not None else (
            1.0 if len(arm.joint_names) >= 6 else UNDERACTUATED_ORIENTATION_WEIGHT)
        weights = np.array([1.0, 1.0, 1.0, rotation, rotation, rotation])

        def residual(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            error = pin.log6(self.data.oMf[frame].actInv(goal)).vector  # in the end-effector frame
            jacobian = pin.computeFrameJacobian(self.model, self.data, q, frame, pin.ReferenceFrame.LOCAL)
            return error * weights, jacobian * weights[:, None]

        q, iterations, converged = self._solve(arm, residual, tolerance, max_iterations, damping, anchor_weight)
        reached = self.data.oMf[frame].actInv(goal)
        return IKResult(q, float(np.linalg.norm(reached.translation)),
                        float(np.linalg.norm(pin.log3(reached.rotation))), iterations, converged)

    def inverse_pointing(self, arm: ArmSpec | int, position: np.ndarray, tool_axis: np.ndarray,
                         direction: np.ndarray, state: np.ndarray, tolerance: float = 1e-5,
                         max_iterations: int = 200, damping: float = 1e-4) -> IKResult:
        """Joints putting the end-effector at `position` with its `tool_axis` (end-effector frame)
        along `direction` (both base frame), the rotation about that axis left free.

        Five constraints: what a five-joint arm can meet exactly where a full pose is out of its
        reach (the SO-101 closing its jaws across a cube's faces, at whatever approach tilt fits).
        `orientation_error` is the angle between the axis and the direction.
        """
        arm = self.spec.arms[arm] if isinstance(arm, int) else arm
        frame = self.model.getFrameId(arm.ee_frame)
        base = self._base_pose(state)
        goal_position = base.act(np.asarray(position, dtype=np.float64))
        goal_direction = base.rotation @ (np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction))
        axis_in_tool = np.asarray(tool_axis, dtype=np.float64) / np.linalg.norm(tool_axis)

        def residual(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pose = self.data.oMf[frame]
            axis = pose.rotation @ axis_in_tool
            free = np.eye(3) - np.outer(axis, axis)  # turning about the axis itself costs nothing
            jacobian = pin.computeFrameJacobian(self.model, self.data, q, frame, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
            error = np.concatenate([goal_position - pose.translation, np.cross(axis, goal_direction)])
            return error, np.vstack([jacobian[:3], free @ jacobian[3:]])

        q, iterations, converged = self._solve(arm, residual, tolerance, max_iterations, damping)
        pose = self.data.oMf[frame]
        alignment = float(np.clip((pose.rotation @ axis_in_tool) @ goal_direction, -1.0, 1.0))
        return IKResult(q, float(np.linalg.norm(goal_position - pose.translation)), float(np.arccos(alignment)),
                        iterations, converged)

    def _base_pose(self, state: np.ndarray) -> pin.SE3:
        """The base frame in the model's world at `state` (which also becomes the IK seed)."""
        self._set(state)
        return self.data.oMf[self._base_frame].copy() if self._base_frame is not None else pin.SE3.Identity()

    def _solve(self, arm: ArmSpec, residual: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
               tolerance: float, max_iterations: int, damping: float,
               anchor_weight: float = 0.0) -> tuple[np.ndarray, int, bool]:
        """Damped least squares over the arm's joints from the last `_set` state; `residual(q)`
        gives the task error and its Jacobian over all velocity coordinates after forward
        kinematics at q. Each step minimises |J dq - e|^2 + damping |dq|^2 + anchor_weight
        |q + dq - seed|^2. Leaves `self.data` at the solution."""
        columns = [self._v_index[name] for name in arm.joint_names]
        rows = [self._q_index[name] for name in arm.joint_names]
        lower, upper = self.model.lowerPositionLimit[rows], self.model.upperPositionLimit[rows]
        q = self._q.copy()
        seed = q[rows].copy()
        iteration = 0
        for iteration in range(1, max_iterations + 1):
            pin.framesForwardKinematics(self.model, self.data, q)
            error, jacobian = residual(q)
            if np.linalg.norm(error) < tolerance:
                break
            jacobian = jacobian[:, columns]
            normal = jacobian.T @ jacobian + (damping + anchor_weight) * np.eye(len(columns))
            step = np.linalg.solve(normal, jacobian.T @ error + anchor_weight * (seed - q[rows]))
            previous = q[rows].copy()
            q[rows] = np.clip(previous + step, lower, upper)
            if np.linalg.norm(q[rows] - previous) < tolerance * 1e-2:
                break  # no progress: the closest pose an arm with fewer than 6 joints (or at a limit) reaches
        pin.framesForwardKinematics(self.model, self.data, q)
        error, _ = residual(q)
        return q[rows].copy(), iteration, bool(np.linalg.norm(error) < 10 * tolerance)
