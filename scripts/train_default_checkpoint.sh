#!/usr/bin/env bash
# Retrain the shipped checkpoint (checkpoints/default) with this project's own pipeline:
# scripted teleoperation in the MuJoCo simulation -> LeRobot v3.0 datasets (vla collect) ->
# stage 1, vla train (config/train/default_checkpoint.yaml) -> recovery demonstrations from
# stage 1's closed-loop states (vla collect --recover-with) -> stage 2, fine-tuned on both
# (config/train/default_checkpoint_recovery.yaml) -> vla eval (seeds from 10000, never used for
# demonstrations) -> checkpoints/default with its evaluation. `make checkpoint` runs this.
# Sizes can be changed through the environment: SO101_EPISODES, ALOHA_EPISODES,
# RECOVERY_EPISODES (per robot), STEPS and RECOVERY_STEPS (default: the configs'),
# EVAL_EPISODES; REUSE_BASE=1 keeps a finished stage 1 (the model card states what was used).
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
RECOVERY_EPISODES=${RECOVERY_EPISODES:-150}
RECOVERY_STEPS=${RECOVERY_STEPS:-}
EVAL_EPISODES=${EVAL_EPISODES:-10}
REUSE_BASE=${REUSE_BASE:-0}

for robot in so101 aloha; do
    episodes_var="${robot^^}_EPISODES"
    if [ ! -f "$WORK/data/${robot}_pick/meta/info.json" ]; then
        rm -rf "$WORK/data/${robot}_pick"
        vla collect --embodiment "$robot" --task pick_cube --episodes "${!episodes_var}" --seed 0 \
            --output "$WORK/data/${robot}_pick"
    fi
done
# Stage 1: from scratch on the scripted demonstrations. REUSE_BASE=1 keeps a finished stage 1
# (its policy in $WORK/base_policy) and goes on from there.
if [ "$REUSE_BASE" = 1 ] && [ -f "$WORK/base_policy/config.json" ] && [ -f "$WORK/run/train_seconds" ]; then
    echo "stage 1: reusing $WORK/base_policy (REUSE_BASE=1)"
else
    rm -rf "$WORK/run" "$WORK/base_policy" "$WORK"/data/*_recovery
    started=$SECONDS
    vla train --config config/train/default_checkpoint.yaml ${STEPS:+--set steps="$STEPS"}
    echo $((SECONDS - started)) > "$WORK/run/train_seconds"
    newest=$(ls -d "$WORK"/run/checkpoints/step_* | sort | tail -n 1)
    cp -r "$newest/policy" "$WORK/base_policy"
fi
# Stage 2: one DAgger round. Stage 1's policy drives, the scripted teleoperator takes over
# (seeds from 5000: neither the demonstrations' nor the evaluation's), then fine-tune on both.
# The two robots' collections run side by side: each is one process on one core.
collectors=()
for robot in so101 aloha; do
    if [ ! -f "$WORK/data/${robot}_recovery/meta/info.json" ]; then
        rm -rf "$WORK/data/${robot}_recovery"
        vla collect --embodiment "$robot" --task pick_cube --episodes "$RECOVERY_EPISODES" --seed 5000 \
            --recover-with "$WORK/base_policy" --output "$WORK/data/${robot}_recovery" &
        collectors+=($!)
    fi
done
for collector in "${collectors[@]}"; do
    wait "$collector"
done
rm -rf "$WORK/recovery_run"
started=$SECONDS
vla train --config config/train/default_checkpoint_recovery.yaml ${RECOVERY_STEPS:+--set steps="$RECOVERY_STEPS"}
echo $((SECONDS - started)) > "$WORK/recovery_run/train_seconds"
newest=$(ls -d "$WORK"/recovery_run/checkpoints/step_* | sort | tail -n 1)
rm -rf "$TARGET"
mkdir -p "$TARGET"
cp -r "$newest/policy/." "$TARGET/"
cp "$WORK/run/metrics.jsonl" "$TARGET/base_metrics.jsonl"
cp "$WORK/run/loss_curve.png" "$TARGET/base_loss_curve.png"
cp "$WORK/recovery_run/metrics.jsonl" "$WORK/recovery_run/loss_curve.png" "$TARGET/"
vla eval --checkpoint "$TARGET" --embodiment so101,aloha --task pick_cube --episodes "$EVAL_EPISODES" \
    --wording training,held_out --mode sync,async --torch-threads 1 --output "$TARGET/eval"
command="${STEPS:+STEPS=$STEPS }${RECOVERY_STEPS:+RECOVERY_STEPS=$RECOVERY_STEPS }EVAL_EPISODES=$EVAL_EPISODES make checkpoint"
python scripts/write_model_card.py --checkpoint "$TARGET" --base-run "$WORK/run" --recovery-run "$WORK/recovery_run" \
    --command "$([ "$REUSE_BASE" = 1 ] && echo "REUSE_BASE=1 ")$command"
echo "checkpoint in $TARGET, model card $TARGET/README.md, evaluation in $TARGET/eval/results.md"
