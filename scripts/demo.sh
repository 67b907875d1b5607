#!/usr/bin/env bash
# The main job on the embedded default: instructed episodes in the simulation over DDS on every
# simulated embodiment, with checkpoints/default/ when it exists, else the untrained bring-up
# checkpoint; success, latency and PNGs in outputs/demo/ (scripts/demo_closed_loop.py).
# DEMO_EPISODES, DEMO_EPISODE_SECONDS and DEMO_EMBODIMENTS make it shorter (CI).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../env.sh
source "$ROOT/env.sh"
vla doctor
python scripts/demo_closed_loop.py
