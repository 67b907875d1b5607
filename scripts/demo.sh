#!/usr/bin/env bash
# The main job on the embedded default. Until the simulation and a trained checkpoint exist,
# this runs the most complete end-to-end path the workspace has (scripts/demo_closed_loop.py).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../env.sh
source "$ROOT/env.sh"
vla doctor
python scripts/demo_closed_loop.py
