"""`vla init-checkpoint`: write an untrained, nearly still checkpoint for bring-up (vla_core.bringup_checkpoint)."""
from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    path = write_initial_checkpoint(args.embodiment, Path(args.output), args.motion_scale, args.seed)
    print(f"wrote an untrained bring-up checkpoint for {', '.join(args.embodiment)} to {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("init-checkpoint", help="write an untrained, nearly still checkpoint for bring-up")
    parser.add_argument("--embodiment", nargs="+", default=["so101"], help="profile names or YAML paths")
    parser.add_argument("--output", required=True, help="checkpoint directory to write")
    parser.add_argument("--motion-scale", type=float, default=0.002,
                        help="spread of the actions around 'no motion' (metres / radians)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run)
