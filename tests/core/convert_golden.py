"""What `vla convert` writes for a fixed set of robot-shaped bags, reduced to digests, so that work
on the converter's speed (reading, decoding, parallelism) can prove the dataset did not change.

The bags: an MCAP episode with a raw rgb8 main camera at 30 Hz, a JPEG wrist camera at 15 Hz,
joint states at 250 Hz and leader commands at 100 Hz; an SQLite3 episode with bgra8 images
padded per row and no command topic; and a bag with a gap inside (skipped, and reported).

The digests cover every table value (data, episodes, tasks), meta/info.json and
meta/stats.json exactly, and every decoded video frame with its presentation time. Bag paths
inside the episodes' metadata are written relative to the work directory, which differs per run.

    python -m tests.core.convert_golden --write   # record the current converter's output
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import av
import pyarrow.parquet as pq

from tests.core.bag_factory import BagSpec, write_bag

GOLDEN = Path(__file__).parent / "data" / "convert_golden.json"
SIZE = 64
TASK = "pick up the red cube"


def spec():
    """so101 with 64 px cameras (small videos; the code paths are those of 224 px)."""
    from vla_core.embodiment import EmbodimentSpec, load_embodiment

    data = json.loads(json.dumps(load_embodiment("so101").to_dict()))
    for camera in data["cameras"]:
        camera["width"] = camera["height"] = SIZE
    return EmbodimentSpec.from_dict(data, source="so101 at 64 px")


def write_bags(root: Path) -> list[Path]:
    profile = spec()
    cameras = {camera.name: camera.topic for camera in profile.cameras}
    custom = {"vla_ros.instruction": TASK, "vla_ros.success": "true", "vla_ros.episode_id": "ep-robot"}
    return [
        write_bag(root / "a_robot", BagSpec(
            profile.joint_names, cameras, seconds=2.0, image_size=SIZE, textured=True, joint_hz=250.0,
            command_hz=100.0, camera_encodings={"wrist": "jpeg"}, camera_rates={"wrist": 15.0},
            custom_data=custom)),
        write_bag(root / "b_gap", BagSpec(profile.joint_names, cameras, seconds=1.0, image_size=SIZE,
                                          skip_camera_frames=(10, 11, 12), custom_data=custom)),
        write_bag(root / "c_sqlite", BagSpec(
            profile.joint_names, cameras, seconds=1.5, image_size=SIZE, textured=True, storage="sqlite3",
            encoding="bgra8", row_padding=8, command_topic=None, custom_data={"vla_ros.instruction": "stack"})),
    ]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table_digest(path: Path, root: Path) -> dict[str, str]:
    """sha256 per column of a parquet table: its values as JSON (the work directory replaced)."""
    table = pq.read_table(path)
    digests = {}
    for name in table.column_names:
        text = json.dumps(table.column(name).to_pylist(), sort_keys=True, default=str)
        digests[name] = _sha(text.replace(str(root), "<root>").encode())
    return digests


def _video_digest(path: Path) -> dict[str, object]:
    frames = hashlib.sha256()
    times = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            frames.update(frame.to_ndarray(format="rgb24").tobytes())
            times.append(float(frame.pts * stream.time_base))
    return {"frames": len(times), "rgb_sha256": frames.hexdigest(), "times_sha256": _sha(json.dumps(times).encode())}


def digest(dataset: Path, root: Path) -> dict[str, object]:
    """Digests of everything in a converted dataset but the mp4 containers' bytes (their frames count)."""
    result: dict[str, object] = {}
    for path in sorted(dataset.rglob("*")):
        relative = str(path.relative_to(dataset))
        if path.suffix == ".parquet":
            result[relative] = _table_digest(path, root)
        elif path.suffix == ".json":
            result[relative] = json.loads(path.read_text())
        elif path.suffix == ".mp4":
            result[relative] = _video_digest(path)
        elif path.is_file():
            result[relative] = _sha(path.read_bytes())
    return result


def convert_and_digest(work: Path, workers: int) -> tuple[dict[str, object], list]:
    """Convert the golden bags in `work` with `workers` processes: (digest, the episode reports)."""
    from vla_core.data.convert_config import ConvertConfig
    from vla_core.data.rosbag_convert import convert_bags

    bags = write_bags(work / "bags") if not (work / "bags").is_dir() else sorted((work / "bags").iterdir())
    output = work / f"dataset_{workers}"
    summary = convert_bags(bags, spec(), ConvertConfig(), output, workers=workers)
    return digest(output, work), summary.reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {GOLDEN}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result, _ = convert_and_digest(Path(work), workers=1)
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    if args.write:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    print(text if not args.write else f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
