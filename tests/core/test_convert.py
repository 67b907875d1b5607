"""`vla convert`: rosbag2 bags written by rosbags' Writer (MCAP and SQLite3) with known content,
converted and read back; bad bags skipped and reported; the real rosbag2 recordings in tests/core/data/rosbag2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from vla_core.cli import main
from vla_core.data.convert_config import ConvertConfig, match_topic
from vla_core.data.lerobot_v3 import load_episodes
from vla_core.data.rosbag_convert import convert_bag, convert_bags
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.images import ImageConversionError, image_to_rgb

from tests.core.bag_factory import (
    TRAJECTORY,
    TYPESTORE,
    BagSpec,
    command_value,
    frame_image,
    joint_value,
    write_bag,
)

# Kept in the repository (172 KB), so a fresh clone runs the test instead of skipping it.
FIXTURES = Path(__file__).resolve().parent / "data" / "rosbag2"
SIZE = 64
# x264 (crf 23, yuv420p) on these frames: mean |error| ~3 levels per frame (jpeg bags ~3);
# the neighbouring frame is ~16 away, so 8 both allows the codec and catches an off-by-one frame
MEAN_ABS_TOLERANCE = 8.0
CUSTOM = {"vla_ros.instruction": "pick up the red cube", "vla_ros.embodiment": "so101",
          "vla_ros.success": "true", "vla_ros.operator_notes": "smooth", "vla_ros.episode_id": "ep-0001"}


@pytest.fixture(scope="module")
def spec() -> EmbodimentSpec:
    data = json.loads(json.dumps(load_embodiment("so101").to_dict()))
    for camera in data["cameras"]:
        camera["width"] = camera["height"] = SIZE
    return EmbodimentSpec.from_dict(data, source="so101 at 64 px")


@pytest.fixture(scope="module")
def profile_file(spec: EmbodimentSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "so101_64.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(spec.to_dict()))))
    return path


def bag_spec(spec: EmbodimentSpec, **values) -> BagSpec:
    return BagSpec(spec.joint_names, {camera.name: camera.topic for camera in spec.cameras}, **values)


def expected(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame times (ns from the start), the joint state nearest each (100 Hz) and the latest command (50 Hz)."""
    t_ns = np.round(np.arange(count) * 1e9 / 30).astype(np.int64)
    state = np.stack([joint_value(np.round(t_ns / 1e7) * 0.01, j) for j in range(6)], axis=1)
    command = np.stack([command_value((t_ns // 20_000_000) * 0.02, j) for j in range(6)], axis=1)
    return t_ns, state, command


@pytest.fixture(scope="module")
def converted(spec: EmbodimentSpec, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("convert")
    bags = [
        write_bag(root / "bags/a_mcap", bag_spec(spec, custom_data=CUSTOM)),
        write_bag(root / "bags/b_sqlite", bag_spec(spec, storage="sqlite3", encoding="bgra8", row_padding=8,
                                                   custom_data={"vla_ros.instruction": "stack", "vla_ros.success": "false"})),
        write_bag(root / "bags/c_jpeg_ns", bag_spec(spec, encoding="jpeg", namespace="robot1")),
        write_bag(root / "bags/d_no_command", bag_spec(spec, command_topic=None, encoding="mono8")),
    ]
    config = ConvertConfig(task="default task")
    summary = convert_bags(bags, spec, config, root / "dataset", workers=2)
    return summary, load_episodes(root / "dataset")


def test_every_bag_kept_with_its_metadata(converted) -> None:
    summary, episodes = converted
    assert [report.kept for report in summary.reports] == [True] * 4
    assert [episode.name for episode in episodes] == ["ep-0001", "b_sqlite", "c_jpeg_ns", "d_no_command"]
    assert [len(episode) for episode in episodes] == [31] * 4  # 1 s at 30 fps, both ends included
    assert [episode.task for episode in episodes] == ["pick up the red cube", "stack", "default task", "default task"]
    assert [episode.success for episode in episodes] == [True, False, None, None]
    assert episodes[0].metadata["operator_notes"] == "smooth"
    assert episodes[2].metadata["topics"]["camera:front"] == "/robot1/front/image_raw/compressed"
    assert summary.frames == 124 and summary.gap_frames == 0


def test_stamps_states_and_actions(converted) -> None:
    _, episodes = converted
    t_ns, state, command = expected(31)
    for episode in episodes:
        np.testing.assert_allclose(episode.timestamps, t_ns * 1e-9, atol=1e-6)
        np.testing.assert_allclose(episode.state, state, atol=1e-6)  # matched by name: the bag lists them reversed
    for episode in episodes[:3]:
        np.testing.assert_allclose(episode.action, command, atol=1e-6)
        assert episode.metadata["action_source"] == "command"
    no_command = episodes[3]
    np.testing.assert_allclose(no_command.action, np.concatenate([state[1:], state[-1:]]), atol=1e-6)
    assert no_command.metadata["action_source"] == "next_state"


def test_images_decode_to_the_recorded_frames(converted) -> None:
    _, episodes = converted
    for episode in episodes:
        for camera, frames in episode.images.items():
            for k in range(len(episode)):
                truth = frame_image(k, SIZE)
                if episode.name == "d_no_command":  # mono8 carries the red channel only
                    truth = np.repeat(truth[:, :, :1], 3, axis=2)
                error = np.abs(frames[k].astype(int) - truth).mean()
                assert error < MEAN_ABS_TOLERANCE, (episode.name, camera, k, error)


def test_bad_bags_are_skipped_and_named(spec: EmbodimentSpec, tmp_path: Path) -> None:
    good = write_bag(tmp_path / "good", bag_spec(spec, custom_data=CUSTOM))
    truncated = tmp_path / "truncated"
    shutil.copytree(good, truncated)
    storage = next(truncated.glob("*.mcap"))
    storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    gap = write_bag(tmp_path / "gap", bag_spec(spec, skip_camera_frames=(12, 13, 14), custom_data=CUSTOM))
    late = write_bag(tmp_path / "late_start", bag_spec(spec, skip_camera_frames=(0, 1, 2, 3), custom_data=CUSTOM))
    other = write_bag(tmp_path / "other_robot", bag_spec(spec, custom_data={**CUSTOM, "vla_ros.embodiment": "aloha"}))
    summary = convert_bags([good, truncated, gap, late, other], spec, ConvertConfig(), tmp_path / "dataset", workers=1)
    reports = {Path(report.bag).name: report for report in summary.reports}
    assert reports["good"].kept and reports["late_start"].kept
    assert not reports["truncated"].kept and "truncated" in reports["truncated"].bag
    assert reports["truncated"].reason
    assert not reports["gap"].kept and "gap(s) inside the episode" in reports["gap"].reason
    assert "not filled in" in reports["gap"].reason
    # a camera starting late: the timeline starts at its first frame (4 of 31 frames later)
    assert reports["late_start"].frames == 27 and reports["late_start"].gap_frames == 0
    assert not reports["other_robot"].kept and "'aloha'" in reports["other_robot"].reason
    assert len(load_episodes(tmp_path / "dataset")) == 2
    assert "skipped " + str(truncated) in summary.text()


def test_missing_topics_listed(spec: EmbodimentSpec, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "no_wrist", BagSpec(spec.joint_names, {"front": "front/image_raw"}, custom_data=CUSTOM))
    episode, report = convert_bag(bag, spec, ConvertConfig().resolved(spec))
    assert episode is None
    assert "camera:wrist <- 'wrist/image_raw'" in report.reason
    assert "/front/image_raw (sensor_msgs/msg/Image" in report.reason and "/joint_states" in report.reason


def with_empty_topic(source: Path, target: Path, topic: str, msgtype: str, custom_data: dict[str, str]) -> Path:
    """`source` copied to `target` with `topic` added and no message on it, as a recorder writes a
    topic nobody published on."""
    from rosbags.rosbag2 import Reader, Writer

    with Reader(source) as reader, Writer(target, version=9) as writer:
        connections = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=TYPESTORE) for c in reader.connections}
        writer.add_connection(topic, msgtype, typestore=TYPESTORE)
        for key, value in custom_data.items():
            writer.set_custom_data(key, value)
        for connection, stamp, raw in reader.messages():
            writer.write(connections[connection.id], stamp, raw)
    return target


def test_an_empty_command_topic_falls_back_to_the_next_state_and_the_summary_says_so(
        spec: EmbodimentSpec, tmp_path: Path) -> None:
    """A recorder writes the command topic even when no teleoperator published: auto mode takes
    the next frame's state instead of skipping the bag, and the summary says where actions came from."""
    topic = "/joint_trajectory_controller/joint_trajectory"
    silent = with_empty_topic(write_bag(tmp_path / "no_command", bag_spec(spec, command_topic=None, custom_data=CUSTOM)),
                              tmp_path / "silent_teleop", topic, TRAJECTORY, CUSTOM)
    commanded = write_bag(tmp_path / "commanded", bag_spec(spec, custom_data={**CUSTOM, "vla_ros.episode_id": "e2"}))
    summary = convert_bags([silent, commanded], spec, ConvertConfig(), tmp_path / "dataset", workers=1)
    assert [report.kept for report in summary.reports] == [True, True], summary.text()
    episodes = load_episodes(tmp_path / "dataset")
    _, state, _ = expected(31)
    np.testing.assert_allclose(episodes[0].action, np.concatenate([state[1:], state[-1:]]), atol=1e-6)
    assert episodes[0].metadata["action_source"] == f"next_state (command topic {topic} has no usable messages)"
    assert "command" not in episodes[0].metadata["topics"]
    text = summary.text()
    assert f"actions <- next_state (command topic {topic} has no usable messages)" in text
    assert "actions <- command" in text
    episode, report = convert_bag(silent, spec, ConvertConfig(action_source="command").resolved(spec))
    assert episode is None, "asked for commands explicitly, a bag without any is still skipped"
    assert f"command topic {topic} has no usable messages" in report.reason


@pytest.mark.parametrize("name, found", [
    ("mcap_talker", "/topic (std_msgs/msg/String"),
    ("sqlite3_talker", "/topic (std_msgs/msg/String"),
    ("mcap_cdr_test", "/array_topic (test_msgs/msg/Arrays"),
    ("mcap_reindex_test_bags_multiple_files", "/chatter (std_msgs/msg/String"),
])
def test_shared_fixtures_give_clear_errors(name: str, found: str, profile_file: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["convert", str(FIXTURES / name), "--embodiment", str(profile_file), "--output",
                 str(tmp_path / "out"), "--task", "t", "--workers", "1", "--no-progress"])
    error = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in error
    assert f"{FIXTURES / name}: needed topic(s) not found" in error
    assert "joint_states <- 'joint_states' (sensor_msgs/msg/JointState)" in error
    assert found in error
    assert not (tmp_path / "out" / "meta" / "info.json").exists()


def test_topic_matching() -> None:
    topics = ["/front/image_raw", "/robot1/joint_states", "/robot2/joint_states", "/robot1/wrist/image_raw"]
    assert match_topic("front/image_raw", topics, None) == ("/front/image_raw", [])
    assert match_topic("wrist/image_raw", topics, None) == ("/robot1/wrist/image_raw", [])
    assert match_topic("joint_states", topics, None) == (None, ["/robot1/joint_states", "/robot2/joint_states"])
    assert match_topic("joint_states", topics, "robot2") == ("/robot2/joint_states", [])
    assert match_topic("/front/image_raw", topics, "robot1") == ("/front/image_raw", [])


def test_image_decoding_errors() -> None:
    class Message:
        height, width, encoding, step = 2, 2, "rgb8", 6
        data = bytes(10)

    with pytest.raises(ImageConversionError, match="expected step x height = 6 x 2 = 12"):
        image_to_rgb(Message())
    Message.encoding = "yuv422"
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        image_to_rgb(Message())


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first run on a machine builds the cached LeRobot venv: 2.5-5 min on 2 cores
def test_lerobot_reads_the_converted_dataset(converted, tmp_path_factory: pytest.TempPathFactory) -> None:
    """LeRobot 0.4.4's own LeRobotDataset (in its separate venv) loads the dataset and decodes frames."""
    import subprocess

    summary, _ = converted
    script = Path(__file__).resolve().parents[2] / "scripts" / "lerobot_check.sh"
    result = subprocess.run([str(script), str(summary.output), "--frames", "12"], capture_output=True, text=True,
                            timeout=880, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["codebase_version"] == "v3.0" and report["lerobot"] == "0.4.4"
    assert report["episodes"] == 4 and report["frames"] == 124 and report["fps"] == 30
    assert report["camera_keys"] == ["observation.images.front", "observation.images.wrist"]
    assert report["frames_read"] >= 12
    assert set(report["tasks"]) == {"pick up the red cube", "stack", "default task"}


def test_the_vla_process_prints_its_summary_and_leaves_a_whole_dataset(converted, profile_file: Path,
                                                                       tmp_path: Path) -> None:
    """`vla convert` as its own process leaves without Python's teardown (vla_core.cli.main): its
    summary and timings still arrive through pipes, the status is 0, and the dataset is complete."""
    import subprocess
    import sys

    summary, episodes = converted
    bag = Path(summary.reports[0].bag)
    result = subprocess.run([sys.executable, "-m", "vla_core.cli", "convert", "--embodiment", str(profile_file),
                             str(bag), "--output", str(tmp_path / "dataset"), "--no-progress", "--timings"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 episode(s) kept, 0 skipped") and "timings {" in result.stderr
    assert [episode.name for episode in load_episodes(tmp_path / "dataset")] == [episodes[0].name]
