#!/usr/bin/env bash
# The main job on the embedded default. Until a trained checkpoint exists, this runs the
# simulation with the untrained bring-up checkpoint (scripts/demo_closed_loop.py).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../env.sh
source "$ROOT/env.sh"
vla doctor
python scripts/demo_closed_loop.py
