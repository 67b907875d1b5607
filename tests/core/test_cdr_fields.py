"""Fields read from serialized messages (`vla_core.data.cdr_fields`) equal what deserialising gives,
for the layouts recorders write and the ones that must fall back to deserialisation; and `vla
convert` reaches its first bag without importing the heavy libraries (start-up, issue 36)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from vla_core.data.bag_reader import deserialize
from vla_core.data.cdr_fields import header_stamp, image_fields, joint_values

from tests.core.bag_factory import COMPRESSED, IMAGE, JOINT_STATE, TRAJECTORY, TYPESTORE, BagSpec, _header, _image_message

JointState = TYPESTORE.types[JOINT_STATE]
Trajectory = TYPESTORE.types[TRAJECTORY]
Point = TYPESTORE.types["trajectory_msgs/msg/JointTrajectoryPoint"]
Duration = TYPESTORE.types["builtin_interfaces/msg/Duration"]


def joint_state(t: int, names: list[str], positions: list[float], frame_id: str = "", little_endian: bool = True
                ) -> bytes:
    header = _header(t)
    header.frame_id = frame_id
    msg = JointState(header=header, name=names, position=np.array(positions, float), velocity=np.zeros(len(names)),
                     effort=np.zeros(0))
    return bytes(TYPESTORE.serialize_cdr(msg, JOINT_STATE, little_endian=little_endian))


def trajectory(t: int, names: list[str], points: list[list[float]]) -> bytes:
    msg = Trajectory(header=_header(t), joint_names=names, points=[
        Point(positions=np.array(p, float), velocities=np.zeros(0), accelerations=np.zeros(0), effort=np.zeros(0),
              time_from_start=Duration(sec=0, nanosec=1)) for p in points])
    return bytes(TYPESTORE.serialize_cdr(msg, TRAJECTORY))


def read_back(raws: list[bytes], msgtype: str) -> dict[int, tuple[int, int, tuple[str, ...], list[float]]]:
    read = joint_values(raws, msgtype)
    found = {}
    for positions, names, values in read.values:
        for position, row in zip(positions.tolist(), values):
            found[position] = (int(read.sec[position]), int(read.nanosec[position]), names, row.tolist())
    assert not set(found) & set(read.fallback)
    assert sorted([*found, *read.fallback]) == list(range(len(raws)))
    return found, read.fallback


def test_joint_states_read_exactly_as_deserialised_and_odd_ones_fall_back() -> None:
    names = ["a", "b", "elbow", "wrist"]
    raws = [joint_state(1_700_000_000_123_456_789 + k * 10_000_000, names, [0.1 * k, -1e-300, np.pi, 7.5])
            for k in range(5)]
    raws.append(joint_state(5, names[::-1], [1.0, 2.0, 3.0, 4.0]))  # same length, other order: its own layout
    raws.append(joint_state(6, names, [1.0, 2.0, 3.0, 4.0], frame_id="base"))  # another length
    raws.append(joint_state(7, names, [1.0, 2.0]))  # fewer positions than names: deserialised
    raws.append(joint_state(8, names, [1.0, 2.0, 3.0, 4.0], little_endian=False))  # big-endian: deserialised
    found, fallback = read_back(raws, JOINT_STATE)
    assert fallback == [7, 8]
    for position, (sec, nanosec, got_names, values) in found.items():
        msg = deserialize(raws[position], JOINT_STATE)
        assert (sec, nanosec) == (msg.header.stamp.sec, msg.header.stamp.nanosec)
        assert list(got_names) == list(msg.name)
        assert values == msg.position.tolist()  # bit for bit
    assert header_stamp(raws[0]) == (1_700_000_000, 123_456_789)
    assert header_stamp(raws[8]) is None


def test_trajectories_read_the_first_point_and_one_without_points_falls_back() -> None:
    names = ["j1", "j2", "j3"]
    raws = [trajectory(k, names, [[0.5 * k, 1.0, 2.0], [9.0, 9.0, 9.0]]) for k in range(3)]
    raws.append(trajectory(3, names, []))
    raws.append(trajectory(4, names, [[1.0, 2.0]]))  # a point with fewer positions than names
    found, fallback = read_back(raws, TRAJECTORY)
    assert fallback == [3, 4]
    for position, (_, _, got_names, values) in found.items():
        msg = deserialize(raws[position], TRAJECTORY)
        assert list(got_names) == names and values == msg.points[0].positions.tolist()


def test_images_read_in_place_as_deserialised_and_odd_ones_fall_back() -> None:
    """Image (row padding, odd frame_id lengths) and CompressedImage fields equal deserialisation's,
    `data` a view of the bytes; damaged or big-endian messages give None (the caller deserialises)."""
    for encoding, padding, kind in (("rgb8", 0, IMAGE), ("bgra8", 8, IMAGE), ("mono8", 3, IMAGE), ("jpeg", 0, COMPRESSED)):
        msg = _image_message(BagSpec(("a",), {}, image_size=10, row_padding=padding), 5, 1, encoding)
        for frame_id in ("", "cam", "camera_optical"):
            msg.header.frame_id = frame_id
            raw = bytes(TYPESTORE.serialize_cdr(msg, kind))
            fields, back = image_fields(raw, kind), deserialize(raw, kind)
            assert isinstance(fields.data, memoryview) and bytes(fields.data) == bytes(back.data)
            names = ("format",) if kind == COMPRESSED else ("height", "width", "encoding", "step")
            assert [getattr(fields, name) for name in names] == [getattr(back, name) for name in names]
            assert bytes(image_fields(raw + b"\0\0", kind).data) == bytes(back.data)  # end padding
            assert image_fields(raw[:-1], kind) is None  # cut short
            assert image_fields(raw + bytes(4), kind) is None  # more than padding after the data
        assert image_fields(bytes(TYPESTORE.serialize_cdr(msg, kind, little_endian=False)), kind) is None


def test_vla_convert_reaches_its_bags_without_heavy_imports() -> None:
    """What `vla convert` imports before its workers read (the dataset writer comes later)."""
    code = (
        "import sys\n"
        "from vla_core.cli import build_parser\n"
        "build_parser('convert')\n"
        "import vla_core.cli.convert, vla_core.data.rosbag_convert, vla_core.data.convert_config\n"
        "import vla_core.data.episode_encoding, vla_core.data.lerobot_layout\n"
        "from vla_core.embodiment import load_embodiment\n"
        "load_embodiment('so101')\n"
        "print(sorted(m for m in ('torch', 'scipy', 'pinocchio', 'pandas', 'pyarrow', 'mujoco', 'transformers')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_subcommand_is_registered_by_the_module_the_cli_names() -> None:
    from vla_core.cli import COMMANDS, build_parser

    for name in COMMANDS:
        parser = build_parser(name)
        choices = next(action.choices for action in parser._subparsers._group_actions)
        assert list(choices) == [name]
