#!/usr/bin/env bash
# Load a converted dataset with LeRobot's own LeRobotDataset (lerobot 0.4.4, dataset format v3.0),
# in a separate venv: lerobot 0.4.x pins torch < 2.11 and fights the project's pins, so it is
# installed with --no-deps. torch 2.10 / torchvision 0.25 are inside its pins: torchvision 0.29
# (beside torch 2.14) no longer has the VideoReader that LeRobot's pyav video backend calls, and
# the torchcodec backend needs FFmpeg shared libraries the machine does not have.
#   scripts/lerobot_check.sh DATASET_DIR [--frames N]
#
# The venv (several GB of PyPI's CUDA torch wheels, minutes to build) lives in a per-user cache
# outside the clone, so fresh clones and CI runs on the same machine share it:
#   ${VLA_LEROBOT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vla_ros/venv-lerobot}
# It is built when missing and rebuilt only when its pins change: the SHA-256 of
# lerobot_check_requirements.txt and the lerobot pin below is kept inside it. A lock beside it
# lets concurrent runs share it (shared while checking) and makes a rebuild wait for them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLA_LEROBOT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vla_ros/venv-lerobot}"
PYTHON="${VLA_LEROBOT_PYTHON:-python3.11}"
REQUIREMENTS="$ROOT/scripts/lerobot_check_requirements.txt"
LEROBOT="lerobot==0.4.4"  # installed with --no-deps; its light dependencies are in $REQUIREMENTS
STAMP="$VENV/.requirements-sha256"

if [[ $# -lt 1 ]]; then
    echo "usage: $0 DATASET_DIR [--frames N]" >&2
    exit 2
fi

wanted=$( { cat "$REQUIREMENTS"; echo "$LEROBOT --no-deps"; } | sha256sum | cut -d' ' -f1)
current() { cat "$STAMP" 2>/dev/null || true; }

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock -s 9  # held (through exec below) while the check runs, so no rebuild pulls the venv away
if [[ "$(current)" != "$wanted" ]]; then
    flock -x 9  # wait for runs using the old venv; another run may have rebuilt it meanwhile
    if [[ "$(current)" != "$wanted" ]]; then
        if ! command -v "$PYTHON" >/dev/null; then
            echo "lerobot_check: $PYTHON not found; LeRobot 0.4.4 needs Python 3.10 or 3.11 (set VLA_LEROBOT_PYTHON)" >&2
            exit 1
        fi
        start=$(date +%s)
        echo "lerobot_check: building $VENV (its pins changed or it is new; minutes) ..." >&2
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
        "$VENV/bin/python" -m pip install -q --no-deps "$LEROBOT"
        echo "$wanted" > "$STAMP"  # last: an interrupted build is rebuilt next time
        echo "lerobot_check: venv ready in $(( $(date +%s) - start )) s" >&2
    fi
    flock -s 9
fi

exec "$VENV/bin/python" "$ROOT/scripts/lerobot_check.py" "$@"
