"""`vla convert` throughput: two 224x224 cameras at 30 Hz, joint states at 100 Hz and
JointTrajectory commands at 50 Hz per bag, converted into one LeRobot v3.0 dataset with the
default two worker processes. Reported as frames per second and as a multiple of real time
(seconds of recording converted per second); the issue asks for >= 10x on a 2-core machine.
Images pan a noise texture so the video encoder does real work.

The machine may be shared, so each run also records the 1-minute load average at its start and
the CPU time it used (its own process and the worker processes): recorded seconds per CPU second
is the speed one free core gives, whatever else runs beside it."""
from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from vla_core.data.convert_config import ConvertConfig
from vla_core.data.rosbag_convert import convert_bags
from vla_core.embodiment import load_embodiment

from benchmarks.measure import Measurement
from tests.core.bag_factory import BagSpec, write_bag


def run(quick: bool) -> list[Measurement]:
    spec = load_embodiment("so101")  # cameras 224x224, control rate 30 Hz
    bags_count, seconds, repeats = (2, 5.0, 1) if quick else (4, 10.0, 5)
    work = Path(tempfile.mkdtemp(prefix="bench_conversion_"))
    try:
        bags = [write_bag(work / f"bag_{i}", BagSpec(
            spec.joint_names, {camera.name: camera.topic for camera in spec.cameras}, seconds=seconds,
            image_size=224, textured=True, custom_data={"vla_ros.instruction": "pick up the cube"}))
            for i in range(bags_count)]
        speed, rate, per_core, load = [], [], [], []
        for repeat in range(repeats):
            load.append(os.getloadavg()[0])
            cpu_before = _cpu_seconds()
            started = time.perf_counter()
            summary = convert_bags(bags, spec, ConvertConfig(), work / f"dataset_{repeat}", workers=2)
            elapsed = time.perf_counter() - started
            speed.append(summary.recorded_s / elapsed)
            rate.append(summary.frames / elapsed)
            per_core.append(summary.recorded_s / (_cpu_seconds() - cpu_before))
        notes = {"bags": bags_count, "seconds_per_bag": seconds, "frames": summary.frames, "workers": 2,
                 "cameras": "2 x 224x224 rgb8 @ 30 Hz", "codec": "libx264 crf 23",
                 "load_avg_1min": " ".join(f"{value:.1f}" for value in load)}
        return [
            Measurement.from_samples("conversion speed", "x real time", speed, target=">= 10x", **notes),
            Measurement.from_samples("conversion rate", "frames/s", rate),
            Measurement.from_samples("conversion speed per CPU second", "x real time", per_core,
                                     note="recorded s / CPU s of the parent and its workers"),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
