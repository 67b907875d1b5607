"""`vla convert` beside forge-robotics (PyPI) on the same robot-shaped bags, in one run.

forge-robotics converts rosbag2 recordings to LeRobot v3.0 too; it is installed into its own
venv, never the project's, and named by VLA_BENCH_FORGE (its `forge` executable):

    python3.11 -m venv /tmp/forge-venv
    /tmp/forge-venv/bin/pip install forge-robotics==0.2.0 rosbags pyarrow av opencv-python-headless
    VLA_BENCH_FORGE=/tmp/forge-venv/bin/forge python -m benchmarks conversion_peers

Without it this benchmark measures nothing. forge takes one bag per run, so its bags run as
parallel processes, one per core (its best case on this machine); `vla convert` gets all bags in
one command with its default workers (one per core). Runs alternate, so both see the same load.
Wall time is process start to exit. After the timed runs, each tool's output is described from its
meta/info.json (features, episodes, frames) and, with VLA_BENCH_LEROBOT=1, loaded with LeRobot
0.4.4's own LeRobotDataset (scripts/lerobot_check.sh; its venv takes minutes to build once).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.bench_conversion import Shape, convert, write_bags
from benchmarks.measure import Measurement

ROOT = Path(__file__).resolve().parents[1]
SHAPES = (Shape("60 s x2, MCAP, joints 500 Hz", bags=2, seconds=60.0, joint_hz=500.0, repeats=5),  # the target's
          Shape("10 s x4, MCAP", bags=4, seconds=10.0))
QUICK_SHAPES = (Shape("5 s x2, MCAP", bags=2, seconds=5.0, repeats=1),)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def forge_convert(forge: str, bags: list[Path], output: Path, cores: int) -> tuple[float, float]:
    """Wall and CPU seconds to convert every bag with forge, `cores` processes at a time, one bag each."""
    def one(index_bag: tuple[int, Path]) -> None:
        index, bag = index_bag
        result = subprocess.run([forge, "convert", str(bag), str(output / f"episode_{index:03d}"), "--format",
                                 "lerobot-v3", "--fps", "30"], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"forge convert {bag} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")

    started, cpu = time.perf_counter(), _children_cpu()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(one, enumerate(bags)))
    return time.perf_counter() - started, _children_cpu() - cpu


def describe(dataset: Path) -> dict[str, object]:
    """What a LeRobot v3.0 dataset holds, from its meta/info.json."""
    info = json.loads((dataset / "meta/info.json").read_text())
    features = info.get("features", {})
    return {"features": sorted(features), "episodes": info.get("total_episodes"), "frames": info.get("total_frames"),
            "cameras": sorted(key for key, value in features.items() if value.get("dtype") == "video")}


def lerobot_loads(dataset: Path) -> str:
    result = subprocess.run([str(ROOT / "scripts/lerobot_check.sh"), str(dataset), "--frames", "8"],
                            capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode == 0:
        return "loads: " + result.stdout.strip().splitlines()[-1]
    return "does not load: " + (result.stderr.strip().splitlines() or ["(no message)"])[-1][-300:]


def run(quick: bool) -> list[Measurement]:
    forge = os.environ.get("VLA_BENCH_FORGE")
    if not forge:
        print("  VLA_BENCH_FORGE is not set (the forge executable of its own venv): nothing measured", file=sys.stderr)
        return []
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench_conversion_peers_"))
    measurements: list[Measurement] = []
    try:
        for shape in QUICK_SHAPES if quick else SHAPES:
            bags = write_bags(shape, work / "bags")
            ours: list[float] = []
            theirs: list[float] = []
            ours_cpu: list[float] = []
            theirs_cpu: list[float] = []
            load: list[float] = []
            for repeat in range(shape.repeats):
                load.append(os.getloadavg()[0])
                for path in (work / "vla", work / "forge"):
                    shutil.rmtree(path, ignore_errors=True)
                run_ = convert(bags, work / "vla", None)
                ours.append(run_.wall_s)
                ours_cpu.append(run_.cpu_s)
                wall, cpu = forge_convert(forge, bags, work / "forge", cores)
                theirs.append(wall)
                theirs_cpu.append(cpu)
                print(f"  {shape.name} #{repeat}: vla convert {ours[-1]:.2f} s ({ours_cpu[-1]:.2f} CPU s), "
                      f"forge {theirs[-1]:.2f} s ({theirs_cpu[-1]:.2f} CPU s)", flush=True)
            recorded = run_.recorded_s
            notes: dict[str, float | int | str] = {
                "load_avg_1min": " ".join(f"{value:.1f}" for value in load), "forge": "forge-robotics 0.2.0",
                "forge_processes": cores, "vla_workers": min(cores, shape.bags)}
            vla_output, forge_output = describe(work / "vla"), describe(work / "forge" / "episode_000")
            notes["vla_output"] = (f"{vla_output['episodes']} episodes in one dataset, {vla_output['frames']} frames, "
                                   f"features {vla_output['features']}")
            notes["forge_output"] = (f"one dataset per bag, {forge_output['frames']} frames in the first, "
                                     f"features {forge_output['features']}")
            if os.environ.get("VLA_BENCH_LEROBOT") == "1":
                notes["vla_lerobot"] = lerobot_loads(work / "vla")
                notes["forge_lerobot"] = lerobot_loads(work / "forge" / "episode_000")
            measurements += [
                Measurement.from_samples(f"vla convert wall time, {shape.name}", "s", ours, **notes),
                Measurement.from_samples(f"forge convert wall time, {shape.name}", "s", theirs),
                Measurement.from_samples(f"vla convert / forge wall time, {shape.name}", "ratio",
                                         [a / b for a, b in zip(ours, theirs)], target="< 1"),
                Measurement.from_samples(f"vla convert CPU seconds, {shape.name}", "s", ours_cpu),
                Measurement.from_samples(f"forge CPU seconds, {shape.name}", "s", theirs_cpu),
                Measurement.from_samples(f"vla convert / forge CPU seconds, {shape.name}", "ratio",
                                         [a / b for a, b in zip(ours_cpu, theirs_cpu)]),
                Measurement.from_samples(f"vla convert end to end, {shape.name}", "x real time",
                                         [recorded / value for value in ours]),
                Measurement.from_samples(f"forge end to end, {shape.name}", "x real time",
                                         [recorded / value for value in theirs]),
            ]
            shutil.rmtree(work / "bags")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return measurements
