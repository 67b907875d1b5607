"""`vla train`: train or fine-tune a policy on a mixture of LeRobot v3.0 datasets.

    vla train --config config/train/default.yaml --set datasets='[{path: data/pick, weight: 1}]'
    vla train --resume runs/pick/checkpoints/step_0002000 --set steps=4000
    torchrun --nproc_per_node 8 -m vla_core.cli train --config ...   # the same run on 8 processes

With --resume the saved run's config is the base; --config is not read and --set still applies.
"""
from __future__ import annotations

import argparse
import sys

from vla_core.training.config import TrainConfigError


def run(args: argparse.Namespace) -> int:
    from vla_core.checkpoint import CheckpointError
    from vla_core.data.episode import EpisodeError
    from vla_core.data.lerobot_v3 import DatasetError
    from vla_core.embodiment import ProfileError
    from vla_core.training.config import TrainConfig, apply_overrides, load_train_config
    from vla_core.training.distributed import shutdown_distributed
    from vla_core.training.loop import STATE_DIR, latest_step_directory, train
    from vla_core.training.state import read_state_info

    try:
        if args.resume:
            if args.config:
                raise TrainConfigError("--resume continues the saved run with its own config; drop --config "
                                       "(use --set to change settings)")
            saved = read_state_info(latest_step_directory(args.resume) / STATE_DIR)["config"]
            config = TrainConfig.from_dict(apply_overrides(saved, args.set), f"{args.resume} (saved config)")
        else:
            config = load_train_config(args.config, args.set)
        if not config.datasets:
            raise TrainConfigError("no datasets to train on: set datasets in the config or with "
                                   "--set datasets='[{path: DIR, weight: 1}]'")
        checkpoint = train(config, resume=args.resume, device=args.device)
    except (TrainConfigError, DatasetError, EpisodeError, CheckpointError, ProfileError, FileNotFoundError) as error:
        # the settings, datasets or checkpoints named on the command line: say which, no traceback
        print(f"vla train: {error}", file=sys.stderr)
        return 2
    finally:
        shutdown_distributed()
    print(f"final checkpoint: {checkpoint}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train or fine-tune a policy on LeRobot v3.0 datasets",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="training config YAML (config/train/default.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting (dotted keys reach into policy.*); values are YAML")
    parser.add_argument("--resume", metavar="DIR",
                        help="a step directory (checkpoints/step_N) or a run's output directory (its newest step)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    parser.set_defaults(run=run)
