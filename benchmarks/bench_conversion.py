"""`vla convert` throughput: two 224x224 cameras at 30 Hz, joint states at 100 Hz and
JointTrajectory commands at 50 Hz per bag, converted into one LeRobot v3.0 dataset with the
default two worker processes. Reported as frames per second and as a multiple of real time
(seconds of recording converted per second); the issue asks for >= 10x on a 2-core machine.
Images pan a noise texture so the video encoder does real work."""
from __future__ import annotations

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
    bags_count, seconds, repeats = (2, 5.0, 1) if quick else (4, 10.0, 3)
    work = Path(tempfile.mkdtemp(prefix="bench_conversion_"))
    try:
        bags = [write_bag(work / f"bag_{i}", BagSpec(
            spec.joint_names, {camera.name: camera.topic for camera in spec.cameras}, seconds=seconds,
            image_size=224, textured=True, custom_data={"vla_ros.instruction": "pick up the cube"}))
            for i in range(bags_count)]
        speed, rate = [], []
        for repeat in range(repeats):
            started = time.perf_counter()
            summary = convert_bags(bags, spec, ConvertConfig(), work / f"dataset_{repeat}", workers=2)
            elapsed = time.perf_counter() - started
            speed.append(summary.recorded_s / elapsed)
            rate.append(summary.frames / elapsed)
        notes = {"bags": bags_count, "seconds_per_bag": seconds, "frames": summary.frames, "workers": 2,
                 "cameras": "2 x 224x224 rgb8 @ 30 Hz", "codec": "libx264 crf 23"}
        return [
            Measurement.from_samples("conversion speed", "x real time", speed, target=">= 10x", **notes),
            Measurement.from_samples("conversion rate", "frames/s", rate),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
