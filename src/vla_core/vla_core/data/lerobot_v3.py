"""LeRobot datasets, format v3.0, written from and read into `Episode` objects.

Layout (as LeRobot 0.4's `LeRobotDataset` reads it; checked with `scripts/lerobot_check.sh`):

    meta/info.json                              codebase_version "v3.0", fps, features, paths, totals
    meta/stats.json                             per feature: min/max/mean/std/count/q01..q99
    meta/tasks.parquet                          index: task text, column task_index
    meta/episodes/chunk-000/file-000.parquet    one row per episode: length, tasks, where its rows
                                                and video frames are
    data/chunk-000/file-000.parquet             one row per frame: observation.state, action,
                                                action.eef_pose, timestamp, frame_index,
                                                episode_index, index, task_index
    videos/observation.images.<camera>/chunk-000/file-000.mp4
                                                every episode's frames back to back

Timestamps are the frame's place on the fixed-rate timeline, `frame_index / fps`, since LeRobot
finds an episode's video frame at `from_timestamp + timestamp` within 0.1 ms. Actions are
absolute joint targets (the `Episode` contract); `action.eef_pose` is the same targets as
absolute end-effector poses from forward kinematics, and info.json's `vla_ros` block carries the
embodiment profile and the default action space training derives its chunks in. Everything is
written in one data file and one video file per camera (LeRobot splits at 100 MB / 200 MB;
its reader takes one file as well as many).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vla_core.actions import get_action_space
from vla_core.data.arrow_columns import numbers, pandas_table, table_from_rows, vectors
from vla_core.data.eef_pose import absolute_eef_poses, eef_pose_names
from vla_core.data.episode import Episode
from vla_core.data.episode_encoding import CameraClip, EncodedEpisode, EpisodeEncoder
from vla_core.data.lerobot_layout import (
    INFO_PATH,
    DatasetError,
    check_new_dataset,
    new_clip_dir,
)
from vla_core.data.stats import ImageStats, vector_stats
from vla_core.data.video import VideoJoiner, decode_frames, video_info
from vla_core.embodiment import EmbodimentSpec
from vla_core.images import resize_rgb
from vla_core.kinematics import RobotKinematics

if TYPE_CHECKING:
    import pandas as pd

CODEBASE_VERSION = "v3.0"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
STATE = "observation.state"
ACTION = "action"
EEF_POSE = "action.eef_pose"
INDEX_COLUMNS = ("frame_index", "episode_index", "index", "task_index")


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def _fps_value(fps: float) -> int | float:
    """LeRobot keeps fps as an integer; a fractional rate stays a float."""
    return int(fps) if float(fps).is_integer() else float(fps)


class DatasetWriter:
    """Writes episodes of one embodiment into a new LeRobot v3.0 dataset directory.

    Episodes come in either as `Episode`s (`add`) or already encoded elsewhere by this writer's
    `encoder()` (`add_encoded`: conversion workers encode in parallel). Their video clips are
    joined into the per-camera files as episodes arrive; the tables and metadata are written on
    close, so a directory without meta/info.json is an unfinished (or failed) conversion.
    """

    def __init__(self, root: Path, spec: EmbodimentSpec, fps: float, action_space: str | None = None,
                 codec: str = "libx264", crf: int = 23, clip_dir: Path | None = None) -> None:
        """`clip_dir`: where `encoder()` puts clips, made by `new_clip_dir(root)` (by default here)."""
        self.root = Path(root)
        check_new_dataset(self.root, fps)
        self.spec = spec
        self.fps = float(fps)
        self.action_space = get_action_space(action_space or spec.action_space).name
        self.codec, self.crf = codec, crf
        self._kinematics = RobotKinematics(spec)
        self._columns: list[dict[str, np.ndarray]] = []  # per episode: each data column's values, as stored
        self._episodes: list[dict[str, Any]] = []
        self._tasks: dict[str, int] = {}
        self._videos: dict[str, VideoJoiner] = {}
        self._image_stats = {camera.name: ImageStats() for camera in spec.cameras}
        self._frames = 0
        self._clip_dir = Path(clip_dir) if clip_dir is not None else new_clip_dir(self.root)

    # ---- context manager ---------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._close_videos()  # leave no metadata: the directory is not a dataset

    # ---- episodes ------------------------------------------------------------------------------
    def encoder(self) -> EpisodeEncoder:
        """Encodes episodes for `add_encoded`; picklable, to be called in worker processes."""
        return EpisodeEncoder(self.spec, self.fps, self._clip_dir, self.codec, self.crf)

    def add(self, episode: Episode) -> int:
        """Append one episode, encoding its frames here; returns its episode_index."""
        return self.add_encoded(self.encoder()(episode))

    def add_encoded(self, episode: EncodedEpisode) -> int:
        """Append one episode made by `encoder()`; its clips are joined and deleted. Returns its episode_index."""
        count = len(episode)
        index = len(self._episodes)
        for camera, clip in episode.clips.items():
            joiner = self._videos.get(image_key(camera))
            if joiner is not None and (clip.width, clip.height) != (joiner.width, joiner.height):
                raise DatasetError(f"episode {episode.name!r}: camera {camera!r} frames are {clip.width}x{clip.height}, "
                                   f"earlier episodes' were {joiner.width}x{joiner.height}")
        task_index = self._tasks.setdefault(episode.task, len(self._tasks))
        eef = absolute_eef_poses(self._kinematics, episode.action)
        columns = {
            STATE: episode.state.astype(np.float32), ACTION: episode.action.astype(np.float32),
            EEF_POSE: eef.astype(np.float32), "timestamp": (np.arange(count) / self.fps).astype(np.float32),
            "frame_index": np.arange(count, dtype=np.int64), "episode_index": np.full(count, index, np.int64),
            "index": self._frames + np.arange(count, dtype=np.int64), "task_index": np.full(count, task_index, np.int64),
        }
        row: dict[str, Any] = {
            "episode_index": index, "tasks": [episode.task], "length": count,
            "data/chunk_index": 0, "data/file_index": 0,
            "dataset_from_index": self._frames, "dataset_to_index": self._frames + count,
        }
        for camera in self.spec.cameras:
            row.update(self._add_video(camera.name, episode.clips[camera.name]))
        for clip in episode.clips.values():
            clip.path.unlink()
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                    "name": episode.name, "success": episode.success,
                    "metadata": json.dumps(episode.metadata, sort_keys=True, default=str)})
        self._columns.append(columns)
        self._episodes.append(row)
        self._frames += count
        return index

    def _add_video(self, camera: str, clip: CameraClip) -> dict[str, Any]:
        key = image_key(camera)
        joiner = self._videos.get(key)
        if joiner is None:
            path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
            joiner = self._videos[key] = VideoJoiner(path, self.fps)
        start = joiner.append(clip.path, clip.frames)
        self._image_stats[camera].merge(clip.stats)
        return {f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                f"videos/{key}/from_timestamp": start / self.fps,
                f"videos/{key}/to_timestamp": joiner.frames / self.fps}

    # ---- metadata ------------------------------------------------------------------------------
    def _close_videos(self) -> None:
        for joiner in self._videos.values():
            joiner.close()
        shutil.rmtree(self._clip_dir, ignore_errors=True)

    def close(self) -> None:
        """Finish the videos and write the data table and meta/ files."""
        self._close_videos()
        if not self._episodes:
            raise DatasetError(f"{self.root}: no episodes were added; a dataset needs at least one")
        data = {name: np.concatenate([columns[name] for columns in self._columns]) for name in self._columns[0]}
        path = self.root / DATA_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({name: vectors(values) if values.ndim == 2 else numbers(values, _arrow_type(values))
                                 for name, values in data.items()}), path)
        episodes_path = self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table_from_rows(self._episodes), episodes_path)
        # the table DataFrame.to_parquet wrote, indexed by task (LeRobot reads it with pandas)
        pq.write_table(pandas_table("task", list(self._tasks), "task_index", list(self._tasks.values())),
                       self.root / TASKS_PATH)
        _write_json(self.root / STATS_PATH, self._stats(data))
        _write_json(self.root / INFO_PATH, self._info())

    def _features(self) -> dict[str, dict]:
        joints = list(self.spec.joint_names)
        features: dict[str, dict] = {}
        for camera in self.spec.cameras:
            key = image_key(camera.name)
            joiner = self._videos[key]
            features[key] = {"dtype": "video", "shape": [joiner.height, joiner.width, 3],
                             "names": ["height", "width", "channels"], "info": video_info(joiner.path)}
        features[STATE] = {"dtype": "float32", "shape": [len(joints)], "names": joints}
        features[ACTION] = {"dtype": "float32", "shape": [len(joints)], "names": joints}
        names = eef_pose_names(self.spec)
        features[EEF_POSE] = {"dtype": "float32", "shape": [len(names)], "names": names}
        features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
        for column in INDEX_COLUMNS:
            features[column] = {"dtype": "int64", "shape": [1], "names": None}
        return features

    def _info(self) -> dict[str, Any]:
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.spec.name,
            "total_episodes": len(self._episodes),
            "total_frames": self._frames,
            "total_tasks": len(self._tasks),
            "chunks_size": 1000,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": _fps_value(self.fps),
            "splits": {"train": f"0:{len(self._episodes)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": self._features(),
            "vla_ros": {"embodiment": self.spec.to_dict(), "action_space": self.action_space},
        }

    def _stats(self, data: Mapping[str, np.ndarray]) -> dict[str, dict]:
        """Statistics of the values as stored (float32 vectors and timestamps, int64 indices)."""
        stats = {image_key(camera): result.result() for camera, result in self._image_stats.items()}
        for column in (STATE, ACTION, EEF_POSE, "timestamp", *INDEX_COLUMNS):
            stats[column] = vector_stats(data[column].astype(np.float64))
        return stats


def _arrow_type(values: np.ndarray) -> pa.DataType:
    return pa.float32() if values.dtype == np.float32 else pa.int64()


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n")


# ---- reading -------------------------------------------------------------------------------------
def read_info(root: Path) -> dict[str, Any]:
    """meta/info.json of a v3.0 dataset, checked for the fields this module relies on."""
    path = Path(root) / INFO_PATH
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: {root} is not a LeRobot dataset (or its conversion did not finish)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected a JSON object, got {type(info).__name__}")
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(f"{path}: codebase_version is {info.get('codebase_version')!r}, expected "
                           f"{CODEBASE_VERSION!r} (convert older datasets with LeRobot's v2.1 -> v3.0 script)")
    missing = [key for key in ("fps", "features", "data_path", "total_episodes", "total_frames") if key not in info]
    if missing:
        raise DatasetError(f"{path}: missing field(s) {missing}")
    for key in (STATE, ACTION):
        if key not in info["features"]:
            raise DatasetError(f"{path}: features lack {key!r}; found {sorted(info['features'])}")
    return info


def read_embodiment(root: Path, info: Mapping[str, Any] | None = None) -> EmbodimentSpec:
    """The embodiment profile a vla_ros conversion stored in info.json's `vla_ros` block."""
    info = info if info is not None else read_info(root)
    path = Path(root) / INFO_PATH
    block = info.get("vla_ros")
    if not isinstance(block, dict) or "embodiment" not in block:
        raise DatasetError(f"{path}: no 'vla_ros.embodiment' block; this dataset was not written by vla_ros, "
                           "so its embodiment must be given separately")
    return EmbodimentSpec.from_dict(block["embodiment"], source=f"{path} (vla_ros.embodiment)")


def _read_parquet_dir(root: Path, directory: str) -> pd.DataFrame:
    import pandas as pd  # here, not with the module: the writer (every conversion) does without it

    paths = sorted((Path(root) / directory).glob("chunk-*/file-*.parquet"))
    if not paths:
        raise DatasetError(f"{Path(root) / directory}: expected chunk-XXX/file-XXX.parquet files, found none")
    try:
        return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    except (OSError, pa.ArrowException) as error:
        raise DatasetError(f"{Path(root) / directory}: a parquet file does not read: {error}") from error


def _resizer(size: int | None):
    return None if size is None else (lambda image: resize_rgb(image, size, size))


def _camera_sizes(cameras: list[str], image_size: int | dict[str, int] | None) -> dict[str, int | None]:
    if isinstance(image_size, dict):
        unknown = sorted(set(image_size) - set(cameras))
        if unknown:
            raise ValueError(f"image_size names camera(s) {unknown}; the dataset has {cameras}")
        return {camera: image_size.get(camera) for camera in cameras}
    return {camera: image_size for camera in cameras}


def load_episodes(root: Path, image_size: int | dict[str, int] | None = None, with_images: bool = True) -> list[Episode]:
    """Every episode of a vla_ros v3.0 dataset, with decoded camera frames (none with `with_images=False`:
    a reader of the joints alone skips the decoding, most of the loading time).

    `image_size` resizes frames to size x size as they are decoded (one size for all cameras, or
    per camera name), so a large dataset never sits in memory at full resolution.
    """
    import pandas as pd

    root = Path(root)
    info = read_info(root)
    spec = read_embodiment(root, info)
    fps = float(info["fps"])
    data = _read_parquet_dir(root, "data").sort_values("index", kind="stable").reset_index(drop=True)
    episodes_table = _read_parquet_dir(root, "meta/episodes").sort_values("episode_index").reset_index(drop=True)
    for column in (STATE, ACTION, "episode_index", "index"):
        if column not in data.columns:
            raise DatasetError(f"{root / 'data'}: column {column!r} missing; found {list(data.columns)}")
    cameras = [camera.name for camera in spec.cameras] if with_images else []
    sizes = _camera_sizes(cameras, image_size)
    images = {camera: _episode_frames(root, info, episodes_table, camera, fps, sizes[camera]) for camera in cameras}
    episodes = []
    for position, row in episodes_table.iterrows():
        start, stop = int(row["dataset_from_index"]), int(row["dataset_to_index"])
        rows = data.iloc[start:stop]
        if len(rows) != stop - start or not (rows["episode_index"] == row["episode_index"]).all():
            raise DatasetError(f"{root / 'data'}: rows {start}..{stop} are not all of episode {row['episode_index']} "
                               f"as {root / 'meta/episodes'} says")
        metadata = json.loads(row["metadata"]) if "metadata" in row and isinstance(row["metadata"], str) else {}
        success = row.get("success")
        episodes.append(Episode(
            name=str(row["name"]) if "name" in row else f"episode_{int(row['episode_index']):06d}",
            embodiment=spec.name, task=str(next(iter(row["tasks"]))), fps=fps,
            timestamps=rows["timestamp"].to_numpy(np.float64),
            state=np.stack(rows[STATE].to_numpy()).astype(np.float64),
            action=np.stack(rows[ACTION].to_numpy()).astype(np.float64),
            images={camera: images[camera][position] for camera in cameras},
            success=None if success is None or pd.isna(success) else bool(success),
            metadata=metadata,
        ))
    return episodes


def _episode_frames(root: Path, info: Mapping[str, Any], episodes: pd.DataFrame, camera: str, fps: float,
                    size: int | None) -> list[np.ndarray]:
    """Each episode's frames of one camera, in episode order, decoded in one pass per video file."""
    key = image_key(camera)
    template = info.get("video_path") or VIDEO_PATH
    frames: list[np.ndarray | None] = [None] * len(episodes)
    by_file: dict[Path, list[int]] = {}
    for position, row in episodes.iterrows():
        try:
            path = root / template.format(video_key=key, chunk_index=int(row[f"videos/{key}/chunk_index"]),
                                          file_index=int(row[f"videos/{key}/file_index"]))
        except KeyError as error:
            raise DatasetError(f"{root / 'meta/episodes'}: column {error.args[0]!r} missing for camera {camera!r}") from error
        by_file.setdefault(path, []).append(position)
    resize = _resizer(size)
    for path, positions in by_file.items():
        # frame k of an episode sits at from_timestamp + k / fps in its file
        wanted = {}
        for position in positions:
            row = episodes.iloc[position]
            first = round(float(row[f"videos/{key}/from_timestamp"]) * fps)
            length = int(row["length"])
            wanted.update({first + k: (position, k) for k in range(length)})
            frames[position] = [None] * length
        for seconds, image in decode_frames(path, resize):
            target = wanted.pop(round(seconds * fps), None)
            if target is not None:
                frames[target[0]][target[1]] = image
        if wanted:
            lost = sorted(wanted)
            raise DatasetError(f"{path}: {len(lost)} frame(s) the episodes index are not in the video "
                               f"(first at {lost[0] / fps:.3f} s); expected frames at from_timestamp + k / fps")
    return [np.stack(episode_frames) for episode_frames in frames]
