"""`vla convert`: rosbag2 demonstrations (MCAP or SQLite3) -> one LeRobot v3.0 dataset.

    vla convert --embodiment so101 bags/episode_* --output datasets/pick

The mapping from topics to features comes from the embodiment profile, then `--config`
(config/convert/*.yaml), then the flags below. Bad bags are reported and skipped; the exit
status is 1 only when no episode could be converted or the arguments are wrong.

Start-up is part of what a user waits for: this module and what `run` imports before the first
bag is read stay light (no torch, scipy, Pinocchio, pandas; the dataset writer is imported while
the workers read). So is the end: run as its own process, `vla convert` leaves without Python's
teardown of those modules once the dataset and summary are written (`exit_without_teardown`,
vla_core.cli.main). `--timings` prints where the time went, for `benchmarks/bench_conversion.py`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _camera(text: str) -> tuple[str, str]:
    name, sep, topic = text.partition("=")
    if not sep or not name or not topic:
        raise argparse.ArgumentTypeError(f"--camera expects NAME=TOPIC, got {text!r}")
    return name, topic


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="rosbag2 bags -> LeRobot v3.0 dataset",
        description="Convert rosbag2 demonstrations (one bag directory per episode, MCAP or SQLite3) into one "
                    "LeRobot v3.0 dataset: parquet tables, one mp4 per camera, meta/ (info, stats, tasks, episodes).")
    parser.add_argument("bags", nargs="+", type=Path, help="bag directories, or folders of bag directories")
    parser.add_argument("--output", "-o", type=Path, required=True, help="new dataset directory")
    parser.add_argument("--embodiment", help="profile name or YAML path (default: the config's 'embodiment')")
    parser.add_argument("--config", type=Path, help="conversion mapping YAML (see config/convert/)")
    parser.add_argument("--fps", type=float, help="dataset rate (default: the profile's control_rate_hz)")
    parser.add_argument("--max-skew", type=float, help="seconds a stream's nearest stamp may be from a frame")
    parser.add_argument("--stamps", choices=("header", "receive"), help="time source of each message")
    parser.add_argument("--action-source", choices=("auto", "command", "next_state"),
                        help="action labels from the command topic, or the next frame's state")
    parser.add_argument("--namespace", help="namespace the profile's relative topics live under")
    parser.add_argument("--camera", type=_camera, action="append", default=[], metavar="NAME=TOPIC",
                        help="topic of a profile camera (repeatable)")
    parser.add_argument("--joint-states", dest="joint_state_topic", help="joint state topic")
    parser.add_argument("--command", dest="command_topic", help="command topic (JointTrajectory, JointState, "
                                                                "Float64MultiArray)")
    parser.add_argument("--action-space", help="default action space stored in the dataset")
    parser.add_argument("--task", help="instruction for bags whose metadata has none")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="bags converted in parallel, each with a thread per camera (default: the CPU cores, "
                             f"{os.cpu_count() or 1} here; never more than the bags)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--timings", action="store_true",
                        help="print a JSON line on stderr: start-up to the first bag read, total, seconds per stage")
    # the dataset and the summary are written when `run` returns: no teardown needed (vla_core.cli.main)
    parser.set_defaults(run=run, exit_without_teardown=True)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vla_core.data.bag_reader import BagError
    from vla_core.data.convert_config import ConvertConfigError, load_config
    from vla_core.data.lerobot_layout import DatasetError
    from vla_core.data.rosbag_convert import EpisodeSkipped, convert_bags, find_bags
    from vla_core.embodiment import ProfileError, load_embodiment

    try:
        config = load_config(args.config).with_overrides(
            embodiment=args.embodiment, fps=args.fps, max_skew=args.max_skew, stamps=args.stamps,
            action_source=args.action_source, namespace=args.namespace, cameras=dict(args.camera),
            joint_state_topic=args.joint_state_topic, command_topic=args.command_topic,
            action_space=args.action_space, task=args.task,
        ).validate("command line")
        if config.embodiment is None:
            raise ConvertConfigError("no embodiment: pass --embodiment NAME or set 'embodiment' in --config")
        spec = load_embodiment(config.embodiment)
        bags = find_bags(args.bags)
        with tqdm(total=len(bags), unit="episode", disable=args.no_progress, file=sys.stderr) as bar:
            def progress(report) -> None:
                bar.update(1)
                bar.set_postfix_str(f"{report.name}: {'kept' if report.kept else 'skipped'}")

            summary = convert_bags(bags, spec, config, args.output, workers=args.workers, progress=progress)
    except (ConvertConfigError, ProfileError, BagError, DatasetError, EpisodeSkipped, FileNotFoundError,
            ValueError) as error:
        print(f"vla convert: {error}", file=sys.stderr)
        return 1
    print(summary.text())
    if args.timings:
        print("timings " + json.dumps(_timings(summary)), file=sys.stderr)
    return 0


def _process_start() -> float:
    """CLOCK_BOOTTIME seconds when this process started (/proc/self/stat's starttime)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _timings(summary) -> dict[str, object]:
    """Start-up (process start to the first bag opened, 10 ms resolution, and the CPU seconds spent
    until then), the conversion's own timer, and the CPU seconds of each stage."""
    first_read = summary.first_read_at - _process_start() if summary.first_read_at else None
    return {"first_read_s": first_read, "first_read_cpu_s": summary.first_read_cpu, "convert_s": summary.seconds, "recorded_s": summary.recorded_s,
            "frames": summary.frames, "stages_s": summary.stages,
            "since_start_s": time.clock_gettime(time.CLOCK_BOOTTIME) - _process_start()}
