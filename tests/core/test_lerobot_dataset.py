"""LeRobot v3.0 writer and reader: layout, metadata and a round trip of known episodes."""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from vla_core.data.episode import Episode, EpisodeError
from vla_core.data.lerobot_v3 import (
    DatasetError,
    DatasetWriter,
    load_episodes,
    read_info,
)
from vla_core.data.video import VideoEncoder, VideoError, VideoJoiner
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.kinematics import RobotKinematics

SIZE = 64
# x264 (crf 23, yuv420p) on these synthetic frames: measured mean |error| ~3 levels, so 6 leaves margin
MEAN_ABS_TOLERANCE = 6.0


@pytest.fixture(scope="module")
def spec() -> EmbodimentSpec:
    data = json.loads(json.dumps(load_embodiment("so101").to_dict()))  # tuples -> lists, as in a file
    for camera in data["cameras"]:
        camera["width"] = camera["height"] = SIZE
    return EmbodimentSpec.from_dict(data, source="so101 at 64 px")


def make_episode(spec: EmbodimentSpec, index: int, count: int, success: bool | None) -> Episode:
    rng = np.random.default_rng(index)
    low, high = RobotKinematics(spec).position_limits()
    state = rng.uniform(low, high, size=(count, spec.state_dim))
    images = {}
    for c, camera in enumerate(spec.cameras):
        frames = np.zeros((count, SIZE, SIZE, 3), np.uint8)
        frames[..., c] = 60
        for k in range(count):  # a square whose place tells the frame apart
            frames[k, (k * 3) % 48:(k * 3) % 48 + 16, 8:24] = (220, 40 + index * 50, 90)
        images[camera.name] = frames
    return Episode(name=f"demo_{index}", embodiment=spec.name, task=f"task {index % 2}", fps=30.0,
                   timestamps=np.arange(count) / 30.0, state=state, action=np.roll(state, -1, axis=0),
                   images=images, success=success, metadata={"operator": "test", "index": index})


@pytest.fixture(scope="module")
def written(spec: EmbodimentSpec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Episode]]:
    root = tmp_path_factory.mktemp("lerobot") / "dataset"
    episodes = [make_episode(spec, 0, 20, True), make_episode(spec, 1, 25, False), make_episode(spec, 2, 15, None)]
    with DatasetWriter(root, spec, 30.0, action_space="abs_eef") as writer:
        for episode in episodes:
            writer.add(episode)
    return root, episodes


def test_layout_and_info(written, spec: EmbodimentSpec) -> None:
    root, _ = written
    for relative in ("meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                     "data/chunk-000/file-000.parquet", "videos/observation.images.front/chunk-000/file-000.mp4",
                     "videos/observation.images.wrist/chunk-000/file-000.mp4"):
        assert (root / relative).is_file(), relative
    info = read_info(root)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30 and info["robot_type"] == "so101"
    assert info["total_episodes"] == 3 and info["total_frames"] == 60 and info["total_tasks"] == 2
    assert info["splits"] == {"train": "0:3"}
    features = info["features"]
    assert features["observation.state"]["names"] == list(spec.joint_names)
    assert features["action.eef_pose"]["shape"] == [10]
    assert features["observation.images.front"]["info"]["video.pix_fmt"] == "yuv420p"
    assert info["vla_ros"]["action_space"] == "abs_eef"
    assert EmbodimentSpec.from_dict(info["vla_ros"]["embodiment"]) == spec


def test_tables_and_stats(written, spec: EmbodimentSpec) -> None:
    root, episodes = written
    data = pd.read_parquet(root / "data/chunk-000/file-000.parquet")
    assert list(data["index"]) == list(range(60))
    assert list(data["episode_index"]) == [0] * 20 + [1] * 25 + [2] * 15
    np.testing.assert_allclose(data["timestamp"][20:45], np.arange(25) / 30, atol=1e-6)
    # action.eef_pose is forward kinematics of the action, gripper binary
    kinematics = RobotKinematics(spec)
    pose = kinematics.forward(episodes[0].action[3])[0]
    np.testing.assert_allclose(data["action.eef_pose"][3][:3], pose[:3, 3], atol=1e-5)
    assert set(np.unique(np.stack(data["action.eef_pose"])[:, -1])) <= {0.0, 1.0}
    meta = pd.read_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    assert list(meta["dataset_from_index"]) == [0, 20, 45] and list(meta["dataset_to_index"]) == [20, 45, 60]
    assert list(meta["videos/observation.images.front/from_timestamp"]) == pytest.approx([0, 20 / 30, 45 / 30])
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks.loc["task 1", "task_index"] == 1
    stats = json.loads((root / "meta/stats.json").read_text())
    state = np.concatenate([episode.state for episode in episodes])
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["q01"], np.quantile(state.astype(np.float32), 0.01, axis=0), atol=1e-6)
    assert stats["observation.state"]["count"] == [60]
    front = np.concatenate([episode.images["front"][:, ::4, ::4] for episode in episodes]) / 255.0  # stats' grid
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    np.testing.assert_allclose(np.ravel(stats["observation.images.front"]["mean"]), front.mean((0, 1, 2)), atol=1e-9)
    np.testing.assert_allclose(np.ravel(stats["observation.images.front"]["max"]), front.max((0, 1, 2)))


def test_round_trip(written) -> None:
    root, episodes = written
    loaded = load_episodes(root)
    assert [episode.name for episode in loaded] == ["demo_0", "demo_1", "demo_2"]
    for original, back in zip(episodes, loaded):
        assert len(back) == len(original) and back.task == original.task and back.success == original.success
        assert back.metadata == original.metadata
        np.testing.assert_allclose(back.state, original.state, rtol=1e-6, atol=1e-6)  # float32 storage
        np.testing.assert_allclose(back.action, original.action, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(back.timestamps, original.timestamps, atol=1e-6)
        for camera, frames in original.images.items():
            error = np.abs(back.images[camera].astype(int) - frames).mean(axis=(1, 2, 3))
            assert error.max() < MEAN_ABS_TOLERANCE, (camera, error.max())


def test_resize_at_load(written) -> None:
    root, _ = written
    loaded = load_episodes(root, image_size={"front": 32})
    assert loaded[1].images["front"].shape == (25, 32, 32, 3)
    assert loaded[1].images["wrist"].shape == (25, SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="camera"):
        load_episodes(root, image_size={"side": 32})


def test_writer_refusals(spec: EmbodimentSpec, tmp_path: Path) -> None:
    episode = make_episode(spec, 0, 10, None)
    drifting = make_episode(spec, 1, 10, None)
    drifting.timestamps = np.arange(10) / 25.0
    with pytest.raises(EpisodeError, match="grid"), DatasetWriter(tmp_path / "a", spec, 30.0) as writer:
        writer.add(drifting)
    assert not (tmp_path / "a" / "meta/info.json").exists()
    with DatasetWriter(tmp_path / "b", spec, 30.0) as writer:
        writer.add(episode)
    with pytest.raises(DatasetError, match="exists"):
        DatasetWriter(tmp_path / "b", spec, 30.0)


def test_reader_errors_name_the_file(written, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="info.json does not exist"):
        load_episodes(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text(json.dumps({"codebase_version": "v2.1"}))
    with pytest.raises(DatasetError, match=r"info.json: codebase_version is 'v2.1', expected 'v3.0'"):
        read_info(tmp_path)


def test_videos_join_episode_clips_on_keyframes(written) -> None:
    """Each episode's clip is copied into the camera's file: frame k at k / fps, every episode starting
    on a keyframe (episode 2 starts at the odd frame 45, where one continuous gop-2 stream has none)."""
    root, _ = written
    meta = pd.read_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    starts = {round(t * 30) for t in meta["videos/observation.images.front/from_timestamp"]}
    assert starts == {0, 20, 45}
    with av.open(str(root / "videos/observation.images.front/chunk-000/file-000.mp4")) as container:
        stream = container.streams.video[0]
        packets = [packet for packet in container.demux(stream) if packet.dts is not None]
        times = np.array([float(packet.pts * stream.time_base) for packet in packets])
        keyframes = {k for k, packet in enumerate(packets) if packet.is_keyframe}
    np.testing.assert_allclose(np.sort(times), np.arange(60) / 30, atol=1e-4)  # LeRobot's tolerance
    assert starts <= keyframes
    assert not list(root.glob(".clips-*"))  # the writer's scratch clips are gone


def test_joiner_refuses_clips_that_do_not_fit(tmp_path: Path) -> None:
    clips = {}
    for name, size in (("a", 32), ("b", 48)):
        clips[name] = tmp_path / f"{name}.mp4"
        encoder = VideoEncoder(clips[name], 30.0, size, size)
        encoder.write(np.zeros((3, size, size, 3), np.uint8))
        encoder.close()
    joiner = VideoJoiner(tmp_path / "joined.mp4", 30.0)
    assert joiner.append(clips["a"], 3) == 0 and joiner.append(clips["a"], 3) == 3
    with pytest.raises(VideoError, match=r"b.mp4: h264 48x48 yuv420p cannot join .*joined.mp4 \(h264 32x32"):
        joiner.append(clips["b"], 3)
    with pytest.raises(VideoError, match="a.mp4: 3 frame\\(s\\) in the clip, the episode has 4"):
        joiner.append(clips["a"], 4)
    joiner.close()
