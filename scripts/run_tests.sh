#!/usr/bin/env bash
# Lint (ruff, rules in ruff.toml), then run the test suite in the workspace environment. Extra
# arguments go to pytest.
# pytest's "no tests collected" (exit 5) is a failure here: a suite that ran nothing proved nothing.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=../env.sh
source "$ROOT/env.sh" || exit 1
ruff check "$ROOT" || { echo "run_tests: ruff check failed (rules in ruff.toml)" >&2; exit 1; }
python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run_tests: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"
