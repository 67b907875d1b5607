#!/usr/bin/env bash
# Load a converted dataset with LeRobot's own LeRobotDataset (lerobot 0.4.4, dataset format v3.0),
# in a separate venv: lerobot 0.4.x pins torch < 2.11 and fights the project's pins, so it is
# installed with --no-deps. torch 2.10 / torchvision 0.25 are inside its pins: torchvision 0.29
# (beside torch 2.14) no longer has the VideoReader that LeRobot's pyav video backend calls, and
# the torchcodec backend needs FFmpeg shared libraries the machine does not have.
#   scripts/lerobot_check.sh DATASET_DIR [--frames N]
# The venv (.venv-lerobot, git-ignored) is made once; later runs reuse it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLA_LEROBOT_VENV:-$ROOT/.venv-lerobot}"
PYTHON="${VLA_LEROBOT_PYTHON:-python3.11}"

if [[ $# -lt 1 ]]; then
    echo "usage: $0 DATASET_DIR [--frames N]" >&2
    exit 2
fi

if [[ ! -f "$VENV/.complete" ]]; then
    if ! command -v "$PYTHON" >/dev/null; then
        echo "lerobot_check: $PYTHON not found; LeRobot 0.4.4 needs Python 3.10 or 3.11 (set VLA_LEROBOT_PYTHON)" >&2
        exit 1
    fi
    start=$(date +%s)
    echo "lerobot_check: creating $VENV (once) ..." >&2
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q torch==2.10.0 torchvision==0.25.0
    "$VENV/bin/pip" install -q --no-deps lerobot==0.4.4
    "$VENV/bin/pip" install -q -r "$ROOT/scripts/lerobot_check_requirements.txt"
    touch "$VENV/.complete"
    echo "lerobot_check: venv ready in $(( $(date +%s) - start )) s" >&2
fi

exec "$VENV/bin/python" "$ROOT/scripts/lerobot_check.py" "$@"
