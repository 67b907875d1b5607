"""Open a dataset directory with LeRobot's own `LeRobotDataset` and check what a training run reads.

Runs inside the cached LeRobot venv (see lerobot_check.sh), never in the project's venv: it imports
only lerobot and its dependencies. Checks: metadata totals against the frames and episodes actually
loaded, each episode's frame range, and for a few frames spread over the dataset (first and last of
every episode included) that every feature is present with its declared shape, camera frames decode
at their timestamps, and the task text resolves. Prints one JSON summary line; exits 1 with the
reason on the first failure.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def fail(message: str) -> None:
    print(f"lerobot_check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="LeRobot v3.0 dataset directory")
    parser.add_argument("--frames", type=int, default=8, help="frames read besides every episode's first and last")
    args = parser.parse_args()

    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset(repo_id="local/check", root=args.dataset, video_backend="pyav")
    meta = dataset.meta
    if len(dataset) != meta.total_frames:
        fail(f"{len(dataset)} frames loaded, info.json says total_frames = {meta.total_frames}")
    if dataset.num_episodes != len(meta.episodes):
        fail(f"{dataset.num_episodes} episodes, meta/episodes has {len(meta.episodes)} rows")
    indices: set[int] = set()
    for episode in meta.episodes:
        start, stop = episode["dataset_from_index"], episode["dataset_to_index"]
        if stop - start != episode["length"]:
            fail(f"episode {episode['episode_index']}: index range {start}..{stop} is not its length {episode['length']}")
        indices.update({start, stop - 1})
    step = max(1, len(dataset) // max(1, args.frames))
    indices.update(range(0, len(dataset), step))
    for index in sorted(indices):
        item = dataset[index]
        for key, feature in meta.features.items():
            if key not in item:
                fail(f"frame {index}: feature {key!r} missing; item has {sorted(item)}")
            shape = tuple(item[key].shape)
            expected = tuple(feature["shape"])
            if feature["dtype"] == "video":
                expected = (expected[2], expected[0], expected[1])  # LeRobot returns channels first
            if shape != expected and not (expected == (1,) and shape == ()):
                fail(f"frame {index}: {key} has shape {shape}, info.json declares {expected}")
        if int(item["index"]) != index:
            fail(f"frame {index}: its 'index' column says {int(item['index'])}")
        if not isinstance(item.get("task"), str) or not item["task"]:
            fail(f"frame {index}: no task text (task_index {int(item['task_index'])})")
    print(json.dumps({
        "lerobot": lerobot.__version__, "codebase_version": meta.info["codebase_version"],
        "episodes": dataset.num_episodes, "frames": len(dataset), "fps": dataset.fps,
        "camera_keys": meta.camera_keys, "frames_read": len(indices),
        "tasks": list(meta.tasks.index),
    }))


if __name__ == "__main__":
    main()
