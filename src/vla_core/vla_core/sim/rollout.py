"""Run a scripted teleoperator in a scene without ROS: the frames a demonstration is made of.

At each control tick the measured joints are the state, the teleoperator's command is the
action, and the cameras are rendered; the command is then followed for one control period
the way the simulation node's joint trajectory controller does (a single-point trajectory
reached at the next tick, interpolated at every physics step).

A disturbance (DART, Laskey et al. 2017) is added to the command the robot executes but not to
the action recorded: the arm drifts off the teleoperator's path as a slightly-off policy would,
and every frame's action still says where the teleoperator meant to be, so the demonstrations
hold the way back from states an undisturbed demonstration never visits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_core.sim.scene import TabletopScene
from vla_core.sim.tasks import CubeTask
from vla_core.sim.teleop import ScriptedTeleop, TeleopTrajectory, smooth_noise
from vla_core.sim.trajectory_follower import TrajectoryFollower


DISTURBANCE_SECONDS = 1.0  # the disturbance drifts over about a second and ramps in over the first
DISTURBANCE_STREAM = 1  # its generator is (seed, 1), so a disturbed episode plays the undisturbed plan


@dataclass
class Rollout:
    """T frames at the teleoperator's rate; images only for the cameras asked for."""

    timestamps: np.ndarray  # (T,) seconds from the first frame
    state: np.ndarray  # (T, J) measured joints
    action: np.ndarray  # (T, J) commanded joints
    success: bool
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> (T, H, W, 3) uint8
    object_poses: np.ndarray | None = None  # (T, 4) the named cube's (x, y, z, yaw) at each frame


def plan_task(scene: TabletopScene, task: CubeTask, teleop: ScriptedTeleop,
              rng: np.random.Generator) -> TeleopTrajectory:
    """The teleoperator's plan for `task` from the scene as it is now: the arm where it stands,
    the named cube where it lies (wherever a reset or an earlier controller left them)."""
    place_at = scene.bin_position if task.needs_bin else None
    return teleop.plan(scene.joint_positions(), scene.cube(task.colour).position, scene.cube_yaw(task.colour),
                       rng, place_at=place_at)


def check_disturbance(disturbance: float) -> None:
    if disturbance < 0:
        raise ValueError(f"disturbance is a standard deviation in radians, >= 0; got {disturbance}")


def draw_disturbance(teleop: ScriptedTeleop, count: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """(count, J) joint offsets of standard deviation `scale` (rad) on the arm joints, none on the
    grippers (a grasp is the teleoperator's call), low-passed over DISTURBANCE_SECONDS."""
    columns = teleop.arm_joint_columns
    window = max(1, round(DISTURBANCE_SECONDS * teleop.rate_hz))
    ramp = np.minimum(1.0, np.arange(count) / window)[:, None]
    offsets = np.zeros((count, teleop.kinematics.spec.state_dim))
    offsets[:, columns] = scale * ramp * smooth_noise(count, len(columns), window, rng)
    return offsets


def run_scripted_episode(scene: TabletopScene, task: CubeTask, teleop: ScriptedTeleop, seed: int,
                         cameras: tuple[str, ...] = (), disturbance: float = 0.0) -> Rollout:
    """Reset the scene to `seed`, plan the task with a generator seeded by `seed`, and play it,
    disturbed by `disturbance` rad (standard deviation per arm joint; 0: not at all)."""
    check_disturbance(disturbance)
    scene.reset(seed)
    plan = plan_task(scene, task, teleop, np.random.default_rng(seed))
    offsets = (draw_disturbance(teleop, len(plan.joints), disturbance, np.random.default_rng([seed, DISTURBANCE_STREAM]))
               if disturbance > 0 else None)
    return play_plan(scene, task, plan, teleop.rate_hz, cameras, offsets)


def play_plan(scene: TabletopScene, task: CubeTask, plan: TeleopTrajectory, rate_hz: float,
              cameras: tuple[str, ...] = (), disturbance: np.ndarray | None = None) -> Rollout:
    """Play `plan` from the scene's current state, recording a frame per tick; judge `task` at the end.
    `disturbance` (T, J) is added to what the robot executes, not to the recorded action."""
    period = 1.0 / rate_hz
    follower = TrajectoryFollower(scene.joint_positions())
    states, poses, frames = [], [], {camera: [] for camera in cameras}
    start = scene.time
    for tick, command in enumerate(plan.joints):
        states.append(scene.joint_positions())
        poses.append(scene.cube_pose(task.colour))
        for camera in cameras:
            frames[camera].append(scene.render(camera))
        executed = command if disturbance is None else command + disturbance[tick]
        follower.replace(scene.time, np.array([period]), executed[None], scene.time)
        end = start + (tick + 1) * period
        while scene.time < end - 0.5 * scene.timestep:
            scene.command(follower.target(scene.time))
            scene.step(scene.timestep)
    return Rollout(timestamps=plan.times.copy(), state=np.array(states), action=plan.joints.copy(),
                   success=task.success(scene), images={camera: np.stack(frames[camera]) for camera in cameras},
                   object_poses=np.array(poses))
