"""The part of the LeRobot v3.0 writer that `vla convert` needs before its workers start: where
meta/info.json lives, the format's error, and the checks on a new dataset directory.

Why a module of its own: `lerobot_v3` imports pyarrow, pandas, Pinocchio and scipy, which take
longer to import than reading a bag; the converter checks the output directory and starts reading
first, and imports the writer while the workers read.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

INFO_PATH = "meta/info.json"


class DatasetError(ValueError):
    """A dataset file that is missing or not what format v3.0 expects; the message names the file."""


def check_new_dataset(root: Path, fps: float) -> None:
    """DatasetError unless a new dataset at `fps` can be written into `root`."""
    if (Path(root) / INFO_PATH).exists():
        raise DatasetError(f"{Path(root) / INFO_PATH} exists: write a new dataset into an empty directory")
    if fps <= 0:
        raise DatasetError(f"{root}: fps must be > 0, got {fps}")


def new_clip_dir(root: Path) -> Path:
    """A fresh hidden directory in `root` for single-episode video clips (the writer deletes it)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".clips-", dir=root))
