#!/usr/bin/env bash
# The main job on the embedded default. Until the simulation demo exists, this runs the most
# complete end-to-end path the workspace has.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../env.sh
source "$ROOT/env.sh"
vla doctor
