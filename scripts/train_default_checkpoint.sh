#!/usr/bin/env bash
# Retrain the shipped checkpoint (checkpoints/default) with this project's own pipeline:
# scripted teleoperation in the MuJoCo simulation -> LeRobot v3.0 datasets (vla collect) ->
# vla train (config/train/default_checkpoint.yaml) -> vla eval (seeds from 10000, never used for
# demonstrations) -> checkpoints/default with its evaluation. `make checkpoint` runs this.
# Sizes can be changed through the environment: SO101_EPISODES, ALOHA_EPISODES, STEPS (default:
# the config's), EVAL_EPISODES (the model card states what the shipped checkpoint used).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../env.sh
source "$ROOT/env.sh"
WORK=outputs/default_checkpoint
TARGET=checkpoints/default
SO101_EPISODES=${SO101_EPISODES:-200}
ALOHA_EPISODES=${ALOHA_EPISODES:-160}
STEPS=${STEPS:-}
EVAL_EPISODES=${EVAL_EPISODES:-10}

collect() {  # ROBOT EPISODES SEED DATASET: a dataset of scripted picks, unless a complete one is there
    if [ ! -f "$4/meta/info.json" ]; then
        rm -rf "$4"
        vla collect --embodiment "$1" --task pick_cube --episodes "$2" --seed "$3" --output "$4"
    fi
}
# The SO-101's demonstrations are two datasets collected side by side, one per core (an episode
# renders two 224 px cameras and solves the teleoperator's lines by IK, about 9 s on one core).
so101_first=$((SO101_EPISODES / 2))
collect so101 "$so101_first" 0 "$WORK/data/so101_pick_0" &
first_half=$!
collect so101 $((SO101_EPISODES - so101_first)) "$so101_first" "$WORK/data/so101_pick_1"
wait "$first_half"
collect aloha "$ALOHA_EPISODES" 0 "$WORK/data/aloha_pick"
rm -rf "$WORK/run"
started=$SECONDS
vla train --config config/train/default_checkpoint.yaml ${STEPS:+--set steps="$STEPS"}
train_seconds=$((SECONDS - started))
newest=$(ls -d "$WORK"/run/checkpoints/step_* | sort | tail -n 1)
rm -rf "$TARGET"
mkdir -p "$TARGET"
cp -r "$newest/policy/." "$TARGET/"
cp "$WORK/run/metrics.jsonl" "$WORK/run/loss_curve.png" "$TARGET/"
vla eval --checkpoint "$TARGET" --embodiment so101,aloha --task pick_cube --episodes "$EVAL_EPISODES" \
    --wording training,held_out --mode sync,async,ensemble --torch-threads 1 --output "$TARGET/eval"
python scripts/write_model_card.py --checkpoint "$TARGET" --run "$WORK/run" --train-seconds "$train_seconds" \
    --command "${STEPS:+STEPS=$STEPS }EVAL_EPISODES=$EVAL_EPISODES make checkpoint"
echo "checkpoint in $TARGET, model card $TARGET/README.md, evaluation in $TARGET/eval/results.md"
