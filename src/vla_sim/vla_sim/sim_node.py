"""A MuJoCo tabletop scene (SO-101 or ALOHA, pick_cube or cube_in_bin) behind the topics a
real robot driver offers.

Publishes `joint_states`, each camera's `<camera>/image_raw` and `<camera>/camera_info` (topic
names from the embodiment profile, relative so a namespace applies), `/clock`, and the task's
`task_state` (with the bin as `goal_pose` in cube_in_bin). For RViz and Foxglove it publishes
what robot_state_publisher and a camera driver would: the robot model as `robot_description`
(latched) and its links on `/tf` (moving joints) and `/tf_static` (fixed joints), where the
model is a URDF, and every camera's `<camera>_optical_frame` (the frame_id of its images and
CameraInfo) in the profile's base frame, on `/tf_static` or, for a camera that rides on the
robot, on `/tf`. `/tf` is published at each camera capture, stamped with it, so an image's
frames are there at exactly its stamp. It follows
`trajectory_msgs/JointTrajectory` on the profile's command topic the way a ros2_control joint
trajectory controller does (`vla_core.sim.TrajectoryFollower`), and gripper positions (one per
arm) as `std_msgs/Float64MultiArray` on `gripper_topic` when one is set. The embodiment and the
task are parameters (`vla_core.sim.factory`); joint names and cameras come from the
embodiment's profile. The
`reset` service (`vla_msgs/ResetScene`) starts a seeded episode and says its instruction.

Simulation time is the truth: every stamp is simulation time, published on `/clock`, and the
other nodes run with `use_sim_time`. It never goes back: a reset restarts the physics at zero,
and the node adds the simulated time of the earlier episodes, as a real robot's clock runs on
through a reset of its workspace. The physics loop runs on its own thread at
`real_time_factor` (0 = as fast as the CPU allows); rendering costs CPU time per camera and
frame, so the factor achieved is logged every 5 s.
"""
from __future__ import annotations

import collections
import sys
import threading
import time

import numpy as np
from builtin_interfaces.msg import Time
from rclpy._rclpy_pybind11 import InvalidHandle, RCLError
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from geometry_msgs.msg import TransformStamped
from std_msgs.msg import Float64MultiArray, String
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory
from vla_core.embodiment import CameraSpec, EmbodimentSpec, load_embodiment, resolve_model_path
from vla_core.geometry import transform_to_pose7
from vla_core.sim.factory import SIMULATED_EMBODIMENTS, make_scene
from vla_core.sim.frames import FrameTransform, LinkFrames, optical_frame
from vla_core.sim.tasks import TASKS, CubeTask, sample_task
from vla_core.sim.trajectory_follower import TrajectoryFollower
from vla_policy_node.node_main import run_node
from vla_policy_node.parameters import Param, declare_and_read, in_range, one_of, positive
from vla_policy_node.ros_time import duration_to_seconds, seconds_to_stamp, stamp_to_seconds

from vla_msgs.msg import TaskState
from vla_msgs.srv import ResetScene

PARAMETERS = (
    Param("embodiment", "so101", "Embodiment profile of the simulated robot.", one_of(*SIMULATED_EMBODIMENTS)),
    Param("task", "pick_cube", "Task of every episode (its scene gets a bin when the task needs one).",
          one_of(*TASKS)),
    Param("physics_rate_hz", 100.0, "Rate of the control update, joint_states and /clock in simulated Hz.",
          in_range(10.0, 1000.0)),
    Param("camera_rate_hz", 30.0, "Camera frame rate in simulated Hz.", in_range(1.0, 60.0)),
    Param("camera_delay", 0.0, "Simulated seconds from an image's capture (its stamp) to its publication, as a "
                               "camera driver's exposure, readout and transport take.", in_range(0.0, 1.0)),
    Param("image_size", 224, "Width and height of the camera images (square).", in_range(32, 1024)),
    Param("real_time_factor", 1.0, "Simulated seconds per wall second; 0 = as fast as possible.",
          in_range(0.0, 100.0)),
    Param("seed", 0, "Seed of the first episode (later ones come from the reset service)."),
    Param("gripper_topic", "", "Float64MultiArray topic for gripper positions (one per arm); "
          "empty = only JointTrajectory."),
    Param("task_rate_hz", 10.0, "Rate of task_state in simulated Hz.", positive),
)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _robot_description(spec: EmbodimentSpec) -> str | None:
    """The URDF of the embodiment's robot model (the robot the scene simulates), or None when
    the model is MJCF only."""
    path = resolve_model_path(spec.robot_model)
    return path.read_text() if path.suffix == ".urdf" else None


def _transform_message(transform: FrameTransform, stamp: Time) -> TransformStamped:
    msg = TransformStamped(child_frame_id=transform.child)
    msg.header.stamp, msg.header.frame_id = stamp, transform.parent
    x, y, z, qx, qy, qz, qw = transform_to_pose7(transform.matrix).tolist()
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = x, y, z
    msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z, msg.transform.rotation.w = \
        qx, qy, qz, qw
    return msg


def _camera_info_topic(camera: CameraSpec) -> str:
    """`front/image_raw` -> `front/camera_info`: image_transport's convention, beside the image."""
    head, _, _ = camera.topic.rpartition("/")
    return f"{head}/camera_info" if head else "camera_info"


class SimulationNode(Node):
    def __init__(self) -> None:
        super().__init__("vla_sim")
        self.params = p = declare_and_read(self, PARAMETERS)
        self.spec = load_embodiment(p["embodiment"])
        self.scene = make_scene(self.spec.name, p["task"], image_size=p["image_size"])
        self.joints = self.scene.joint_names
        missing = [c.name for c in self.spec.cameras if c.name not in self.scene.cameras]
        if missing or tuple(self.spec.joint_names) != self.joints:
            raise ValueError(f"the {self.spec.name} scene has cameras {list(self.scene.cameras)} and joints "
                             f"{list(self.joints)}; profile {self.spec.source} asks for cameras {missing} it lacks "
                             f"or joints {list(self.spec.joint_names)}")
        self.gripper_columns = [self.joints.index(arm.gripper_joint) for arm in self.spec.arms if arm.gripper_joint]
        self.lock = threading.Lock()  # the physics thread and the service/subscription callbacks share the scene
        self.earlier_episodes_time = 0.0  # simulated seconds before the last reset: /clock is monotonic
        self.follower = TrajectoryFollower(self.scene.joint_positions())
        self.gripper_override: np.ndarray | None = None
        self.episode = 0
        self.task = self._reset(p["seed"])
        self.instruction = self.task.instruction()

        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.joint_pub = self.create_publisher(JointState, self.spec.joint_state_topic, qos_profile_sensor_data)
        self.image_pubs = {c.name: self.create_publisher(Image, c.topic, qos_profile_sensor_data)
                           for c in self.spec.cameras}
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.info_pubs = {c.name: self.create_publisher(CameraInfo, _camera_info_topic(c), latched)
                          for c in self.spec.cameras}
        description = _robot_description(self.spec)
        if description is not None:  # latched, as robot_state_publisher offers it to RViz and Foxglove
            self.description_pub = self.create_publisher(String, "robot_description", latched)
            self.description_pub.publish(String(data=description))
        else:
            self.get_logger().info(f"{self.spec.name}'s robot model {self.spec.robot_model} is not a URDF: "
                                   "robot_description is not published")
        self.link_frames = LinkFrames(self.spec) if description is not None else None
        self.moving_cameras = [c.name for c in self.spec.cameras if self.scene.camera_moves(c.name)]
        # tf2's QoS: /tf reliable with a deep queue, /tf_static latched with everything in one message
        self.tf_pub = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100,
                                                                          reliability=ReliabilityPolicy.RELIABLE))
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", latched)
        with self.lock:
            fixed = self._camera_frames([c.name for c in self.spec.cameras if c.name not in self.moving_cameras])
            fixed += self.link_frames.fixed() if self.link_frames is not None else []
            stamp = seconds_to_stamp(self.now())
        self.tf_static_pub.publish(TFMessage(transforms=[_transform_message(t, stamp) for t in fixed]))
        self.task_pub = self.create_publisher(TaskState, "task_state", RELIABLE)
        newest = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)  # no queue of stale commands
        self.create_subscription(JointTrajectory, self.spec.command_topic, self.on_trajectory, newest)
        if p["gripper_topic"]:
            self.create_subscription(Float64MultiArray, p["gripper_topic"], self.on_gripper, newest)
        self.create_service(ResetScene, "reset", self.on_reset)
        self.running = True
        self.thread = threading.Thread(target=self._physics_loop, name="vla_sim_physics", daemon=True)
        self.thread.start()

    # ---- commands ---------------------------------------------------------------------------------
    def on_trajectory(self, msg: JointTrajectory) -> None:
        """Start a new trajectory like a JTC: at its stamp (sim time), or now when the stamp is zero;
        joints it does not name keep their current target."""
        try:
            if not msg.points:
                raise ValueError("no points")
            unknown = set(msg.joint_names) - set(self.joints)
            if unknown:
                raise ValueError(f"unknown joints {sorted(unknown)} (expected some of {list(self.joints)})")
            columns = [self.joints.index(name) for name in msg.joint_names]
            with self.lock:
                now = self.now()
                stamp = stamp_to_seconds(msg.header.stamp)
                points = np.repeat(self.follower.target(now)[None], len(msg.points), axis=0)
                for row, point in enumerate(msg.points):
                    if len(point.positions) != len(columns):
                        raise ValueError(f"point {row} has {len(point.positions)} positions for {len(columns)} joints")
                    points[row, columns] = point.positions
                times = np.array([duration_to_seconds(pt.time_from_start) for pt in msg.points])
                self.follower.replace(stamp if stamp > 0 else now, times, points, now)
        except ValueError as error:
            self.get_logger().warning(f"ignored a JointTrajectory on {self.spec.command_topic}: {error}",
                                      throttle_duration_sec=2.0)

    def on_gripper(self, msg: Float64MultiArray) -> None:
        expected = len(self.gripper_columns)
        if len(msg.data) != expected or not np.all(np.isfinite(msg.data)):
            self.get_logger().warning(f"ignored a gripper command {list(msg.data)}: expected {expected} finite "
                                      f"position(s), one per arm", throttle_duration_sec=2.0)
            return
        with self.lock:
            self.gripper_override = np.array(msg.data, dtype=np.float64)

    def on_reset(self, request: ResetScene.Request, response: ResetScene.Response) -> ResetScene.Response:
        wording = request.wording or "training"
        if wording not in ("training", "held_out"):
            response.message = f"wording must be 'training' or 'held_out', got {request.wording!r}"
            return response
        with self.lock:
            self.task = self._reset(request.seed)
            self.instruction = self.task.instruction(wording, request.seed)
        response.success, response.task, response.target = True, self.task.name, self.task.colour
        response.instruction = self.instruction
        self.get_logger().info(f"episode {self.episode} (seed {request.seed}): {self.instruction}")
        return response

    def now(self) -> float:
        """Simulated seconds since the node started, across resets. Lock held."""
        return self.earlier_episodes_time + self.scene.time

    def _reset(self, seed: int) -> CubeTask:
        """Called with the lock held (or before the physics thread starts)."""
        self.earlier_episodes_time += self.scene.time
        self.scene.reset(seed)
        self.follower = TrajectoryFollower(self.scene.joint_positions())
        self.gripper_override = None
        self.episode += 1
        return sample_task(self.params["task"], seed, self.scene.colours)

    # ---- physics thread ---------------------------------------------------------------------------
    def _physics_loop(self) -> None:
        """Step, publish and pace until the node is destroyed or ROS shuts down (Ctrl-C shuts the
        context down before `destroy_node` runs, so a publish may find it gone: that ends the loop).

        The renderer's EGL context is created and made current on this thread, so this thread also
        frees it: freeing a context from a thread it is not current on is what EGL leaves undefined.
        """
        try:
            self._run_physics()
        except (RCLError, InvalidHandle):
            if self.context.ok():
                raise
        finally:
            with self.lock:
                self.scene.close()

    def _run_physics(self) -> None:
        p = self.params
        period, camera_period, task_period = 1.0 / p["physics_rate_hz"], 1.0 / p["camera_rate_hz"], 1.0 / p["task_rate_hz"]
        next_camera = next_task = 0.0
        delayed: collections.deque[tuple[float, dict[str, np.ndarray], Time]] = collections.deque()
        with self.lock:
            sim_start = self.now()
        wall_start, next_report = time.monotonic(), time.monotonic() + 5.0
        while self.running and self.context.ok():
            with self.lock:
                target = self.follower.target(self.now())
                if self.gripper_override is not None:
                    target[self.gripper_columns] = self.gripper_override
                self.scene.command(target)
                self.scene.step(period)
                now = self.now()
                stamp = seconds_to_stamp(now)
                self.clock_pub.publish(Clock(clock=stamp))
                self._publish_joints(stamp)
                if now >= next_camera:
                    next_camera += camera_period * max(1, int((now - next_camera) / camera_period) + 1)
                    frames = {name: self.scene.render(name) for name in self.image_pubs}
                    moving = self._moving_frames()
                else:
                    frames, moving = {}, []
                if now >= next_task:
                    next_task = now + task_period
                    self._publish_task(stamp)
            if frames:  # the frames at once, the images stamped at capture and published camera_delay later
                self.tf_pub.publish(TFMessage(transforms=[_transform_message(t, stamp) for t in moving]))
                delayed.append((now + p["camera_delay"], frames, stamp))
            while delayed and delayed[0][0] <= now + 1e-9:
                _, captured, captured_at = delayed.popleft()
                for name, pixels in captured.items():
                    self._publish_image(name, pixels, captured_at)
            if p["real_time_factor"] > 0:
                ahead = wall_start + (now - sim_start) / p["real_time_factor"] - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            if time.monotonic() >= next_report:
                next_report += 5.0
                factor = (now - sim_start) / max(time.monotonic() - wall_start, 1e-9)
                self.get_logger().info(f"simulation time {now:.1f} s, real-time factor {factor:.2f}")

    def _camera_frames(self, cameras: list[str]) -> list[FrameTransform]:
        """Lock held."""
        return [FrameTransform(self.spec.base_frame, optical_frame(c), self.scene.camera_pose(c)) for c in cameras]

    def _moving_frames(self) -> list[FrameTransform]:
        """The links across moving joints and the cameras that ride on the robot, now. Lock held."""
        links = self.link_frames.moving(self.scene.joint_positions()) if self.link_frames is not None else []
        return links + self._camera_frames(self.moving_cameras)

    def _publish_joints(self, stamp: Time) -> None:
        msg = JointState(name=list(self.joints), position=self.scene.joint_positions().tolist(),
                         velocity=self.scene.joint_velocities().tolist())
        msg.header.stamp = stamp
        msg.header.frame_id = self.spec.base_frame
        self.joint_pub.publish(msg)

    def _publish_image(self, camera: str, pixels: np.ndarray, stamp: Time) -> None:
        frame = optical_frame(camera)
        height, width = pixels.shape[:2]
        image = Image(height=height, width=width, encoding="rgb8", step=3 * width, data=pixels.tobytes())
        image.header.stamp, image.header.frame_id = stamp, frame
        self.image_pubs[camera].publish(image)
        k = self.scene.camera_intrinsics(camera)
        info = CameraInfo(height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=k.reshape(-1).tolist(), r=np.eye(3).reshape(-1).tolist(),
                          p=np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist())
        info.header.stamp, info.header.frame_id = stamp, frame
        self.info_pubs[camera].publish(info)

    def _publish_task(self, stamp: Time) -> None:
        cube = self.scene.cube(self.task.colour)
        yaw = self.scene.cube_yaw(self.task.colour)
        msg = TaskState(episode=self.episode, task=self.task.name, target=self.task.colour,
                        instruction=self.instruction, success=self.task.success(self.scene))
        msg.header.stamp, msg.header.frame_id = stamp, self.spec.base_frame
        msg.target_pose.position.x, msg.target_pose.position.y, msg.target_pose.position.z = cube.position.tolist()
        msg.target_pose.orientation.w, msg.target_pose.orientation.z = float(np.cos(yaw / 2)), float(np.sin(yaw / 2))
        if self.task.needs_bin:
            msg.goal_pose.position.x, msg.goal_pose.position.y, msg.goal_pose.position.z = \
                self.scene.bin_position.tolist()
        self.task_pub.publish(msg)

    def destroy_node(self) -> None:
        self.running = False
        self.thread.join(timeout=5.0)
        if self.thread.is_alive():
            self.get_logger().error("the physics thread did not stop within 5 s of shutdown; its renderer is "
                                    "left to the process exit")
        super().destroy_node()


def main() -> int:
    return run_node("sim_node", SimulationNode, sys.argv, after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())
