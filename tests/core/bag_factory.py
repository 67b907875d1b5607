"""Synthetic rosbag2 demonstrations with known content, written by rosbags' Writer (MCAP or SQLite3).

Each frame's image encodes its message number (a bright square whose position and level depend
on it), joint states follow a known sine, and teleoperator commands are JointTrajectory
messages whose first point is `command_value(t)` with the joint names in reverse order, so a
converter that maps by position instead of by name gets them wrong.

Cameras may differ in encoding and rate (`camera_encodings`, `camera_rates`: a raw main camera
beside a JPEG wrist camera at half its rate, as robots record). Messages are made and written one
at a time, merged by stamp, so a 10-minute recording never sits in memory.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

TYPESTORE = get_typestore(Stores.LATEST)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
T0_NS = 1_700_000_000 * 10**9  # header stamps start here (integer ns, so stamps are exact)


def joint_value(t: np.ndarray | float, joint: int) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * 0.5 * np.asarray(t) + joint) + 0.05 * joint


def command_value(t: np.ndarray | float, joint: int) -> np.ndarray:
    return joint_value(np.asarray(t) + 0.1, joint) + 0.01


def _texture(size: int) -> np.ndarray:
    """A fixed smooth-noise RGB texture, as hard to compress as a camera's view of a table top."""
    rng = np.random.default_rng(size)
    coarse = rng.integers(0, 256, (size // 4 + 1, size // 4 + 1, 3)).astype(np.uint8)
    return np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[:size, :size] // 2 + 40


def frame_image(number: int, size: int = 64, textured: bool = False) -> np.ndarray:
    """RGB image identifying message `number`: a background (flat, or a texture panning one pixel
    per frame) and a 16 px square that moves."""
    if textured:
        image = np.roll(_texture(size), number, axis=1)
    else:
        image = np.full((size, size, 3), (40, 80, 120), dtype=np.uint8)
    row, col = (number * 7) % (size - 16), (number * 11) % (size - 16)
    image[row:row + 16, col:col + 16] = (200, (number * 10) % 200 + 40, 60)
    return image


@dataclass
class BagSpec:
    joint_names: tuple[str, ...]
    cameras: dict[str, str]  # camera name -> topic
    seconds: float = 1.0
    camera_hz: float = 30.0
    joint_hz: float = 100.0
    command_hz: float = 50.0
    image_size: int = 64
    encoding: str = "rgb8"  # rgb8, bgr8, rgba8, bgra8, mono8 or "jpeg"
    row_padding: int = 0
    namespace: str = ""
    joint_topic: str = "joint_states"
    command_topic: str | None = "joint_trajectory_controller/joint_trajectory"
    custom_data: dict[str, str] = field(default_factory=dict)
    skip_camera_frames: tuple[int, ...] = ()  # message numbers left out (to make gaps)
    storage: str = "mcap"
    textured: bool = False
    camera_encodings: dict[str, str] = field(default_factory=dict)  # camera name -> encoding (else `encoding`)
    camera_rates: dict[str, float] = field(default_factory=dict)  # camera name -> Hz (else `camera_hz`)
    jpeg_quality: int = 95

    def camera_encoding(self, camera: str) -> str:
        return self.camera_encodings.get(camera, self.encoding)

    def camera_rate(self, camera: str) -> float:
        return self.camera_rates.get(camera, self.camera_hz)


def _topic(spec: BagSpec, name: str) -> str:
    return "/" + "/".join(part for part in (spec.namespace.strip("/"), name) if part)


def stamp_ns(number: int, hz: float) -> int:
    """Header stamp of message `number` of a stream at `hz`."""
    return T0_NS + round(number * 1e9 / hz)


def _header(t_ns: int):
    Header = TYPESTORE.types["std_msgs/msg/Header"]
    Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id="")


def _image_message(spec: BagSpec, t: int, number: int, encoding: str):
    rgb = frame_image(number, spec.image_size, spec.textured)
    if encoding == "jpeg":
        import io

        from PIL import Image
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=spec.jpeg_quality)
        return TYPESTORE.types[COMPRESSED](header=_header(t), format="jpeg",
                                          data=np.frombuffer(buffer.getvalue(), np.uint8))
    if encoding == "mono8":
        pixels = rgb[:, :, :1]
    else:
        order = {"rgb8": [0, 1, 2], "bgr8": [2, 1, 0], "rgba8": [0, 1, 2, 0], "bgra8": [2, 1, 0, 0]}[encoding]
        pixels = rgb[:, :, order]
    rows = pixels.reshape(spec.image_size, -1)
    step = rows.shape[1] + spec.row_padding
    padded = np.zeros((spec.image_size, step), np.uint8)
    padded[:, :rows.shape[1]] = rows
    return TYPESTORE.types[IMAGE](header=_header(t), height=spec.image_size, width=spec.image_size,
                                  encoding=encoding, is_bigendian=0, step=step, data=padded.ravel())


# one stream's messages: (stamp ns, topic, message type, a function making the message)
_Event = tuple[int, str, str, Callable[[], object]]


def _camera_events(spec: BagSpec, camera: str, topic: str) -> Iterator[_Event]:
    encoding, hz = spec.camera_encoding(camera), spec.camera_rate(camera)
    kind = COMPRESSED if encoding == "jpeg" else IMAGE
    name = _topic(spec, topic) + ("/compressed" if encoding == "jpeg" else "")
    for number in range(int(spec.seconds * hz) + 1):
        if number in spec.skip_camera_frames:
            continue
        t = stamp_ns(number, hz)
        yield t, name, kind, lambda t=t, number=number: _image_message(spec, t, number, encoding)


def _joint_events(spec: BagSpec) -> Iterator[_Event]:
    JointState = TYPESTORE.types[JOINT_STATE]
    joints = list(spec.joint_names)
    order = joints[::-1]  # not the profile's order: names must be matched
    for number in range(int(spec.seconds * spec.joint_hz) + 1):
        t = stamp_ns(number, spec.joint_hz)
        values = np.array([float(joint_value((t - T0_NS) * 1e-9, joints.index(name))) for name in order])
        yield t, _topic(spec, spec.joint_topic), JOINT_STATE, lambda t=t, values=values: JointState(
            header=_header(t), name=order, position=values, velocity=np.zeros(0), effort=np.zeros(0))


def _command_events(spec: BagSpec) -> Iterator[_Event]:
    Trajectory = TYPESTORE.types[TRAJECTORY]
    Point = TYPESTORE.types["trajectory_msgs/msg/JointTrajectoryPoint"]
    Duration = TYPESTORE.types["builtin_interfaces/msg/Duration"]
    joints = list(spec.joint_names)
    order = joints[::-1]
    for number in range(int(spec.seconds * spec.command_hz) + 1):
        t = stamp_ns(number, spec.command_hz)
        values = np.array([float(command_value((t - T0_NS) * 1e-9, joints.index(n))) for n in order])

        def make(t: int = t, values: np.ndarray = values) -> object:
            point = Point(positions=values, velocities=np.zeros(0), accelerations=np.zeros(0), effort=np.zeros(0),
                          time_from_start=Duration(sec=0, nanosec=20_000_000))
            return Trajectory(header=_header(t), joint_names=order, points=[point])
        yield t, _topic(spec, spec.command_topic), TRAJECTORY, make


def write_bag(path: Path, spec: BagSpec) -> Path:
    """Write the bag; messages of equal stamps go in the order cameras (the spec's order), joint
    states, commands."""
    plugin = StoragePlugin.MCAP if spec.storage == "mcap" else StoragePlugin.SQLITE3
    streams = [_camera_events(spec, camera, topic) for camera, topic in spec.cameras.items()]
    streams.append(_joint_events(spec))
    if spec.command_topic:
        streams.append(_command_events(spec))
    # every stream's topic, in the order of its first message, registered before any is written
    firsts = [next(stream, None) for stream in streams]
    order = sorted((event[0], position) for position, event in enumerate(firsts) if event is not None)
    streams = [_prepend(first, stream) for first, stream in zip(firsts, streams) if first is not None]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for _, position in order:
            _, topic, kind, _ = firsts[position]
            connections.setdefault(topic, writer.add_connection(topic, kind, typestore=TYPESTORE))
        for key, value in spec.custom_data.items():
            writer.set_custom_data(key, value)
        for t, topic, kind, make in heapq.merge(*streams, key=lambda event: event[0]):
            # received 2 ms after the stamp, as over a network
            writer.write(connections[topic], t + 2_000_000, TYPESTORE.serialize_cdr(make(), kind))
    return path


def _prepend(first: _Event, rest: Iterator[_Event]) -> Iterator[_Event]:
    yield first
    yield from rest
