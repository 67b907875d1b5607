"""What every simulated tabletop scene shares: coloured cubes, an optional bin, physics, cameras.

A robot's scene (`PickCubeScene` for the SO-101, `AlohaScene` for the bimanual ViperX) builds
its MuJoCo model and says where things may be placed; `TabletopScene` does the rest with one
API, so the simulation node, the collector and the tests treat every robot alike:
`reset(seed)`, `joint_positions()`, `command(targets)`, `step(seconds)`, `render(camera)`,
`cube(colour)`, `lifted(colour)`, `in_bin(colour)`, `camera_intrinsics(camera)`, `time`.

Joint vectors are in the embodiment profile's order (arm joints then gripper, arm by arm).
A joint the profile does not list but an actuator drives (the ALOHA's second finger) follows
a listed one through `mirrored`, so one gripper value per arm drives the whole gripper.

Rendering is headless (`MUJOCO_GL=egl`) with shadows, reflections, the skybox and
multisampling off: on 2 CPU cores that is what keeps a 224x224 frame near 30 ms instead of
several hundred (see ../shared/ENVIRONMENT.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vla_core.geometry import make_transform

CUBE_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.15, 0.15, 1.0),
    "green": (0.15, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.85, 1.0),
}
BIN_RGBA = (0.93, 0.93, 0.88, 1.0)  # an off-white tray: far from every cube colour
RESTING_SPEED = 0.05  # m/s: a cube slower than this has come to rest


@dataclass
class CubeState:
    colour: str
    position: np.ndarray  # (3,) world frame


@dataclass(frozen=True)
class Layout:
    """Where a scene may put things, in the world frame (metres)."""

    cube_x: tuple[float, float]
    cube_y: tuple[float, float]
    min_cube_distance: float
    bin_half_size: float = 0.0  # 0: the scene has no bin
    bin_clearance: float = 0.0  # from the bin's edge to any cube's centre
    bin_x: tuple[float, float] | None = None  # where the bin's centre may go; None: the cubes' ranges
    bin_y: tuple[float, float] | None = None


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at `position` looking at `target`, world z up."""
    backward = (position - target) / np.linalg.norm(position - target)  # cameras look along their -z
    right = np.cross([0.0, 0.0, 1.0], backward)
    right /= np.linalg.norm(right)
    up = np.cross(backward, right)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, up, backward]).reshape(-1))
    return quat


def add_cubes(spec: mujoco.MjSpec, colours: tuple[str, ...], half_size: float, mass: float, **geom: object) -> None:
    """One free-floating solid cube per colour; `geom` sets contact attributes (friction, ...).
    The inertia is given explicitly: some models (ALOHA) compute inertia only from other geom groups."""
    unknown = [c for c in colours if c not in CUBE_COLOURS]
    if unknown:
        raise ValueError(f"unknown cube colours {unknown}; expected some of {list(CUBE_COLOURS)}")
    for colour in colours:
        body = spec.worldbody.add_body(name=f"cube_{colour}", pos=[0.0, 0.0, half_size], mass=mass,
                                       inertia=[mass * (2 * half_size) ** 2 / 6] * 3, explicitinertial=True)
        body.add_freejoint(name=f"cube_{colour}")
        body.add_geom(name=f"cube_{colour}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[half_size] * 3,
                      rgba=list(CUBE_COLOURS[colour]), **geom)


def add_bin(spec: mujoco.MjSpec, half_size: float, table_height: float) -> None:
    """A flat tray marked on the table (visual only: cubes rest on the table inside it)."""
    body = spec.worldbody.add_body(name="bin", pos=[0.0, 0.0, table_height + 0.001], mocap=True)
    body.add_geom(name="bin", type=mujoco.mjtGeom.mjGEOM_BOX, size=[half_size, half_size, 0.001],
                  rgba=list(BIN_RGBA), contype=0, conaffinity=0)


def quiet_rendering(spec: mujoco.MjSpec, image_size: int) -> None:
    """No multisampling, and an offscreen buffer large enough for `image_size` frames."""
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = max(spec.visual.global_.offwidth, image_size)
    spec.visual.global_.offheight = max(spec.visual.global_.offheight, image_size)


def _actuator_of(model: mujoco.MjModel, joint: str) -> int:
    joint_id = model.joint(joint).id
    for actuator in range(model.nu):
        if model.actuator_trntype[actuator] == mujoco.mjtTrn.mjTRN_JOINT and model.actuator_trnid[actuator, 0] == joint_id:
            return actuator
    raise ValueError(f"no actuator drives joint {joint!r}")


class TabletopScene:
    """Physics and rendering of one robot's table scene; time advances only through `step`."""

    def __init__(self, model: mujoco.MjModel, joint_names: tuple[str, ...], cameras: tuple[str, ...],
                 home: np.ndarray, colours: tuple[str, ...], cube_half_size: float, table_height: float,
                 layout: Layout, image_size: int, mirrored: dict[str, tuple[str, float]] | None = None) -> None:
        """`mirrored`: joint -> (profile joint, factor): its actuator gets factor x that joint's target."""
        self.model = model
        self.data = mujoco.MjData(model)
        self.joint_names, self.cameras, self.home = joint_names, cameras, np.asarray(home, dtype=np.float64)
        self.colours, self.cube_half_size, self.table_height = colours, cube_half_size, table_height
        self.layout, self.image_size = layout, image_size
        self._qpos = [int(model.joint(name).qposadr[0]) for name in joint_names]
        self._qvel = [int(model.joint(name).dofadr[0]) for name in joint_names]
        self._actuators = [_actuator_of(model, name) for name in joint_names]
        mirrored = mirrored or {}
        self._mirror_actuators = [_actuator_of(model, joint) for joint in mirrored]
        self._mirror_qpos = [int(model.joint(joint).qposadr[0]) for joint in mirrored]
        self._mirror_source = [joint_names.index(source) for source, _ in mirrored.values()]
        self._mirror_factor = np.array([factor for _, factor in mirrored.values()])
        self._ranges = model.actuator_ctrlrange[self._actuators]
        self._renderer: mujoco.Renderer | None = None
        self._scene_option = mujoco.MjvOption()
        self.bin_position: np.ndarray | None = None
        self.reset(0)

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    @property
    def has_bin(self) -> bool:
        return self.layout.bin_half_size > 0

    def reset(self, seed: int) -> None:
        """Home pose; cubes at seeded random places (at least `min_cube_distance` apart, any yaw),
        then the bin (when the scene has one) where no cube lies."""
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        while True:  # a layout with no room left for the bin is drawn again, from the same generator
            placed = self._place_cubes(rng)
            if not self.has_bin or self._place_bin(rng, placed):
                break
        self.place_robot(self.home)

    def _place_cubes(self, rng: np.random.Generator) -> list[np.ndarray]:
        layout, placed = self.layout, []
        for colour in self.colours:
            while True:
                xy = np.array([rng.uniform(*layout.cube_x), rng.uniform(*layout.cube_y)])
                if all(np.linalg.norm(xy - other) >= layout.min_cube_distance for other in placed):
                    break
            placed.append(xy)
            address = int(self.model.joint(f"cube_{colour}").qposadr[0])
            yaw = rng.uniform(-np.pi, np.pi)
            self.data.qpos[address: address + 7] = [*xy, self.table_height + self.cube_half_size,
                                                    np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        return placed

    def _place_bin(self, rng: np.random.Generator, cubes: list[np.ndarray], attempts: int = 50) -> bool:
        """Put the bin where every cube centre is `bin_clearance` outside its edge; False if no
        place was found in `attempts` draws."""
        layout = self.layout
        reach = layout.bin_half_size + layout.bin_clearance
        for _ in range(attempts):
            xy = np.array([rng.uniform(*(layout.bin_x or layout.cube_x)), rng.uniform(*(layout.bin_y or layout.cube_y))])
            if all(np.abs(xy - cube).max() >= reach for cube in cubes):
                self.bin_position = np.r_[xy, self.table_height]
                self.data.mocap_pos[self.model.body("bin").mocapid[0]] = self.bin_position + [0, 0, 0.001]
                return True
        return False

    # ---- robot ---------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def command(self, targets: np.ndarray) -> None:
        """Position targets of the profile's joints, clipped to their actuators' control ranges."""
        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (len(self.joint_names),):
            raise ValueError(f"a command needs {len(self.joint_names)} targets ({', '.join(self.joint_names)}), "
                             f"got shape {targets.shape}")
        clipped = np.clip(targets, self._ranges[:, 0], self._ranges[:, 1])
        self.data.ctrl[self._actuators] = clipped
        self.data.ctrl[self._mirror_actuators] = clipped[self._mirror_source] * self._mirror_factor

    def place_robot(self, joints: np.ndarray) -> None:
        """Put the robot in a pose at once, without physics, and command it to hold there (a reset,
        scenes rendered for supervision): `joints` in the profile's order, clipped to the
        actuators' ranges."""
        joints = np.clip(np.asarray(joints, dtype=np.float64), self._ranges[:, 0], self._ranges[:, 1])
        self.data.qpos[self._qpos] = joints
        self.data.qpos[self._mirror_qpos] = joints[self._mirror_source] * self._mirror_factor
        self.command(joints)
        mujoco.mj_forward(self.model, self.data)

    def joint_ranges(self) -> np.ndarray:
        """(J, 2) lowest and highest command of each profile joint."""
        return self._ranges.copy()

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

    def cube_pose(self, colour: str) -> np.ndarray:
        """(x, y, z, yaw): where the cube is and how it is turned, as `Observation.object_pose` carries it."""
        return np.append(self.cube(colour).position, self.cube_yaw(colour))

    def lifted(self, colour: str, height: float = 0.05) -> bool:
        """The cube's centre is `height` above its resting height."""
        return bool(self.cube(colour).position[2] > self.table_height + self.cube_half_size + height)

    def in_bin(self, colour: str) -> bool:
        """The cube rests on the table (still, within 5 mm of its resting height) with its centre
        over the bin."""
        if not self.has_bin:
            raise ValueError("this scene has no bin (build it with a bin for the cube_in_bin task)")
        position = self.cube(colour).position
        address = int(self.model.joint(f"cube_{colour}").dofadr[0])
        speed = float(np.linalg.norm(self.data.qvel[address: address + 3]))
        resting = abs(position[2] - self.table_height - self.cube_half_size) < 0.005 and speed < RESTING_SPEED
        inside = np.abs(position[:2] - self.bin_position[:2]).max() <= self.layout.bin_half_size
        return bool(resting and inside)

    # ---- cameras -------------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """(image_size, image_size, 3) uint8 RGB from the named camera."""
        if camera not in self.cameras:
            raise ValueError(f"unknown camera {camera!r}; this scene has {list(self.cameras)}")
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

    def camera_pose(self, camera: str) -> np.ndarray:
        """(4, 4) pose in the world frame of the camera's optical frame: z forward, x right, y down,
        the frame CameraInfo's pinhole matrix projects from (MuJoCo's camera looks along its -z,
        y up). The scenes put the robot's base frame at the world origin, so this is also the
        pose in the profile's base frame."""
        camera_id = self.model.camera(camera).id
        rotation = self.data.cam_xmat[camera_id].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        return make_transform(self.data.cam_xpos[camera_id], rotation)

    def camera_moves(self, camera: str) -> bool:
        """The camera rides on a moving body (a wrist camera) rather than on the world."""
        return bool(self.model.cam_bodyid[self.model.camera(camera).id] != 0)

    def image_position(self, camera: str, point: np.ndarray) -> np.ndarray:
        """Where a world point appears in the camera's image: (x, y) in [-1, 1] from the left (top)
        edge to the right (bottom) edge, at any image size; outside [-1, 1] when out of view."""
        camera_id = self.model.camera(camera).id
        rotation = self.data.cam_xmat[camera_id].reshape(3, 3)  # columns: camera x (right), y (up), z (back)
        local = rotation.T @ (np.asarray(point, dtype=np.float64) - self.data.cam_xpos[camera_id])
        if local[2] >= 0:
            raise ValueError(f"point {np.round(point, 3).tolist()} is behind camera {camera!r}")
        half_height = np.tan(np.deg2rad(self.model.cam_fovy[camera_id]) / 2)
        return np.array([local[0], -local[1]]) / (-local[2] * half_height)

    def cube_visible(self, camera: str, colour: str) -> bool:
        """The cube's centre is the first thing a ray from the camera towards it meets (nothing,
        such as the arm, hides it)."""
        camera_id = self.model.camera(camera).id
        origin = self.data.cam_xpos[camera_id].copy()
        hit = np.zeros(1, dtype=np.int32)
        mujoco.mj_ray(self.model, self.data, origin, self.cube(colour).position - origin, None, 1, -1, hit)
        return int(hit[0]) == self.model.geom(f"cube_{colour}").id

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
