"""`vla convert` end to end on robot-shaped recordings, as a user runs it.

Each bag holds what a teleoperated arm records: a raw rgb8 224x224 main camera at 30 Hz, a JPEG
224x224 wrist camera at 15 Hz, joint states at 100 or 500 Hz and the leader arm's commands
(JointTrajectory) at 100 Hz; images pan a noise texture so the video encoder does real work.
Shapes: many short episodes (10 s), 60 s episodes in MCAP and in SQLite3, and one 10-minute
episode for memory. Bags are written by the project's own bag writer (tests/core/bag_factory.py).

Every run is `vla convert` in a new process, timed from process start to exit (what a user
waits for), beside the converter's own timer (its summary), the start-up to the first bag read
(wall, and the CPU seconds spent until then) and the CPU seconds per stage (`vla convert
--timings`: read, resample, decode, encode, write, summed over threads and processes), the
process tree's peak resident memory (sampled every 20 ms) and its CPU seconds, with each camera's
share of decoding and encoding. On a shared machine the CPU seconds are the numbers to compare:
two free cores can at best convert 2 / (CPU seconds per recorded second) times faster than real
time.

Video quality is checked on the first bag of each shape up to 60 s: the dataset's frames of that episode,
decoded, against the frames the converter fed the encoder (the same bag through `convert_bag`,
which keeps them in memory), as PSNR over all pixels per camera.

To compare with an earlier version in the same run (alternating, so that both see the same
load), point VLA_BENCH_BASELINE at that version's src/vla_core directory, e.g.

    git archive <commit> src/vla_core | tar -x -C /tmp/base
    VLA_BENCH_BASELINE=/tmp/base/src/vla_core python -m benchmarks conversion

The machine may be shared: the 1-minute load average at each run's start is recorded.
"""
from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vla_core.embodiment import load_embodiment

from benchmarks.measure import Measurement
from tests.core.bag_factory import BagSpec, write_bag

SUMMARY = re.compile(r"\(([\d.]+) s recorded\).*; ([\d.]+) s, [\d.]+x real time")


@dataclass(frozen=True)
class Shape:
    name: str
    bags: int
    seconds: float
    storage: str = "mcap"
    joint_hz: float = 100.0
    repeats: int = 3


SHAPES = (
    Shape("10 s x4, MCAP", bags=4, seconds=10.0),
    Shape("60 s x2, MCAP, joints 500 Hz", bags=2, seconds=60.0, joint_hz=500.0, repeats=5),  # the target's shape
    Shape("60 s x2, SQLite3", bags=2, seconds=60.0, storage="sqlite3"),
    Shape("10 min x1, MCAP", bags=1, seconds=600.0, repeats=1),
)
QUICK_SHAPES = (
    Shape("5 s x2, MCAP", bags=2, seconds=5.0, repeats=1),
    Shape("20 s x1, SQLite3, joints 500 Hz", bags=1, seconds=20.0, storage="sqlite3", joint_hz=500.0, repeats=1),
)


def write_bags(shape: Shape, folder: Path) -> list[Path]:
    spec = load_embodiment("so101")
    cameras = {camera.name: camera.topic for camera in spec.cameras}  # front (main), wrist
    return [write_bag(folder / f"episode_{index:03d}", BagSpec(
        spec.joint_names, cameras, seconds=shape.seconds, image_size=224, textured=True, joint_hz=shape.joint_hz,
        command_hz=100.0, camera_encodings={"wrist": "jpeg"}, camera_rates={"wrist": 15.0}, jpeg_quality=90,
        storage=shape.storage, custom_data={"vla_ros.instruction": "pick up the cube", "vla_ros.embodiment": "so101"}))
        for index in range(shape.bags)]


@dataclass
class Run:
    wall_s: float  # process start to exit
    convert_s: float  # the converter's own timer
    recorded_s: float
    cpu_s: float
    peak_rss_mib: float
    first_read_s: float | None = None
    first_read_cpu_s: float | None = None
    stages_s: dict[str, float] | None = None


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = int(fields[21]) * page
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier += children
    return sum(rss.get(pid, 0) for pid in tree)


def convert(bags: list[Path], output: Path, source: Path | None) -> Run:
    """One `vla convert` process; `source`: another version's src/vla_core put first on the path."""
    env = dict(os.environ)
    command = [sys.executable, "-m", "vla_core.cli", "convert", "--embodiment", "so101", *map(str, bags),
               "--output", str(output), "--no-progress"]
    if source is not None:
        env["PYTHONPATH"] = f"{source}{os.pathsep}{env.get('PYTHONPATH', '')}"
    else:
        command.append("--timings")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"vla convert failed ({process.returncode}):\n{stdout}\n{stderr[-3000:]}")
    match = SUMMARY.search(stdout)
    if match is None:
        raise RuntimeError(f"vla convert printed no summary:\n{stdout}")
    run = Run(wall, float(match.group(2)), float(match.group(1)),
              after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, peak[0] / 2**20)
    for line in stderr.splitlines():
        if line.startswith("timings "):
            timings = json.loads(line.removeprefix("timings "))
            run.first_read_s, run.stages_s = timings["first_read_s"], timings["stages_s"]
            run.first_read_cpu_s = timings["first_read_cpu_s"]
            run.convert_s, run.recorded_s = timings["convert_s"], timings["recorded_s"]
    return run


def _measurements(shape: Shape, runs: list[Run], label: str, load: list[float]) -> list[Measurement]:
    name = f"{shape.name}{label}"
    notes: dict[str, float | int | str] = {
        "bags": shape.bags, "seconds_per_bag": shape.seconds, "storage": shape.storage,
        "joint_hz": shape.joint_hz, "workers": min(os.cpu_count() or 1, shape.bags),
        "load_avg_1min": " ".join(f"{value:.1f}" for value in load),
        "cpu_s_per_recorded_s": round(statistics.median(run.cpu_s / run.recorded_s for run in runs), 4),
    }
    if runs[0].stages_s is not None:  # the stages, then each camera's decode and encode ('decode.front')
        notes["stage_s_median"] = ", ".join(
            f"{stage} {statistics.median(run.stages_s.get(stage, 0.0) for run in runs):.2f}" for stage in runs[0].stages_s)
    result = [
        Measurement.from_samples(f"end to end, {name}", "x real time", [run.recorded_s / run.wall_s for run in runs],
                                 target=">= 40x (60 s bags)", **notes),
        Measurement.from_samples(f"converter's own timer, {name}", "x real time",
                                 [run.recorded_s / run.convert_s for run in runs]),
        Measurement.from_samples(f"wall time, {name}", "s", [run.wall_s for run in runs]),
        Measurement.from_samples(f"CPU seconds per recorded second, {name}", "s/s",
                                 [run.cpu_s / run.recorded_s for run in runs],
                                 note="user + sys of the process tree; 2 free cores convert at most 2 / this x real time"),
        Measurement.from_samples(f"peak RSS of the process tree, {name}", "MiB", [run.peak_rss_mib for run in runs]),
    ]
    if runs[0].first_read_s is not None:
        result.append(Measurement.from_samples(f"start-up to the first bag read, {name}", "s",
                                               [run.first_read_s for run in runs], target="< 0.5 s"))
        result.append(Measurement.from_samples(f"CPU seconds before the first bag read, {name}", "s",
                                               [run.first_read_cpu_s for run in runs],
                                               note="the same start-up, whatever else the machine runs"))
    return result


def video_psnr(bag: Path, dataset: Path) -> dict[str, float]:
    """PSNR (dB) per camera of the dataset's first episode, decoded, against the frames the converter
    encoded for that bag (the same conversion with its frames kept in memory)."""
    from vla_core.data.convert_config import load_config
    from vla_core.data.rosbag_convert import convert_bag
    from vla_core.data.video import decode_frames

    spec = load_embodiment("so101")
    episode, report = convert_bag(bag, spec, load_config(None).with_overrides(embodiment="so101").resolved(spec))
    if episode is None:
        raise RuntimeError(f"{bag}: {report.reason}")
    result = {}
    for camera, frames in episode.images.items():
        video = dataset / f"videos/observation.images.{camera}/chunk-000/file-000.mp4"
        squared, count = 0.0, 0
        for (_, decoded), source in zip(decode_frames(video), frames):  # the first episode starts the file
            squared += float(np.square(decoded.astype(np.float64) - source).sum())
            count += source.size
        result[camera] = 10 * math.log10(255**2 / (squared / count)) if squared else math.inf
    return result


def run(quick: bool) -> list[Measurement]:
    baseline = os.environ.get("VLA_BENCH_BASELINE")
    sources: dict[str, Path | None] = {"": None}
    if baseline:
        sources[" (baseline)"] = Path(baseline)
    work = Path(tempfile.mkdtemp(prefix="bench_conversion_"))
    measurements: list[Measurement] = []
    try:
        for shape in QUICK_SHAPES if quick else SHAPES:
            started = time.perf_counter()
            bags = write_bags(shape, work / "bags")
            print(f"  {shape.name}: bags written in {time.perf_counter() - started:.1f} s", flush=True)
            runs: dict[str, list[Run]] = {label: [] for label in sources}
            load: dict[str, list[float]] = {label: [] for label in sources}
            quality: dict[str, dict[str, float]] = {}
            for repeat in range(shape.repeats):
                for label, source in sources.items():  # alternated: both see the same load
                    output = work / f"dataset_{repeat}{label.strip(' ()')}"
                    load[label].append(os.getloadavg()[0])
                    runs[label].append(convert(bags, output, source))
                    print(f"  {shape.name}{label}: {runs[label][-1]}", flush=True)
                    if repeat == 0 and shape.seconds <= 60:  # its frames are held in memory
                        quality[label] = video_psnr(bags[0], output)
                    shutil.rmtree(output)
            for label in sources:
                measurements += _measurements(shape, runs[label], label, load[label])
                measurements += [Measurement.from_samples(
                    f"video PSNR against the encoded frames, {camera}, {shape.name}{label}", "dB", [value],
                    note="first episode, every pixel; libx264 ultrafast crf 23, yuv420p, a keyframe every 2 frames")
                    for camera, value in quality.get(label, {}).items()]
            shutil.rmtree(work / "bags")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return measurements
