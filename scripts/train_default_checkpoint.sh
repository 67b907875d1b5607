#!/usr/bin/env bash
# Retrain the shipped policy set (checkpoints/default) with this project's own pipeline:
# scripted teleoperation in the MuJoCo simulation -> LeRobot v3.0 datasets (vla collect) ->
# stage 1: one policy for both robots (config/train/default_checkpoint.yaml) -> each robot's own
# stages on its own data: `frozen` (config/train/default_checkpoint_frozen.yaml: stage 1's encoders
# under a new expert, stems frozen and cached) and `finetune` (config/train/default_checkpoint_finetune.yaml:
# every weight, end to end) -> a policy set (policies.json, vla_core.policy_set) that serves each robot
# with its last stage -> vla eval (seeds from 10000, never used for demonstrations; the default
# ensemble mode, both wordings) -> the model card. `make checkpoint` runs this.
# Sizes and stages can be changed through the environment: SO101_EPISODES, ALOHA_EPISODES, STEPS
# (stage 1, default: the config's), SO101_STAGES and ALOHA_STAGES (each robot's own stages, in order;
# empty: the robot is served by stage 1), FROZEN_PASSES, FINETUNE_STEPS (default: the config's),
# EVAL_EPISODES (the model card states what the shipped set used).
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
SO101_STAGES=${SO101_STAGES-frozen finetune}
ALOHA_STAGES=${ALOHA_STAGES-}  # its own end-to-end stage picked no more than stage 1 (docs/experiments)
FROZEN_PASSES=${FROZEN_PASSES:-18}
FINETUNE_STEPS=${FINETUNE_STEPS:-}
EVAL_EPISODES=${EVAL_EPISODES:-50}

collect() {  # ROBOT EPISODES SEED DATASET: a dataset of scripted picks, unless a complete one is there
    if [ ! -f "$4/meta/info.json" ]; then
        rm -rf "$4"
        vla collect --embodiment "$1" --task pick_cube --episodes "$2" --seed "$3" --output "$4"
    fi
}
newest() {  # RUN: the policy of the run's last saved checkpoint
    echo "$(ls -d "$1"/checkpoints/step_* | sort | tail -n 1)/policy"
}
frames() {  # DATASET...: their frames together
    local path total=0
    for path in "$@"; do
        total=$((total + $(python -c "import json, sys; print(json.load(open(sys.argv[1]))['total_frames'])" \
                                  "$path/meta/info.json")))
    done
    echo "$total"
}
train_robot() {  # ROBOT STAGES DATASET...: the robot's own stages, one core; prints its last policy
    local robot=$1 stages=$2; shift 2
    local datasets=("$@") sources="" path stage previous run
    local -a settings
    previous=$(newest "$WORK/run")
    for path in "${datasets[@]}"; do sources+="{path: $path, weight: 1.0},"; done
    for stage in $stages; do
        run="$WORK/run_${robot}_$stage"
        case $stage in
            frozen) settings=(--set steps=$(((FROZEN_PASSES * $(frames "${datasets[@]}") + 63) / 64))
                              --set encoders_from="$previous" --set feature_cache_dir="$WORK/feature_cache/$robot") ;;
            finetune) settings=(${FINETUNE_STEPS:+--set steps="$FINETUNE_STEPS"} --set init_from="$previous") ;;
            *) echo "unknown stage '$stage' for $robot: expected frozen or finetune" >&2; return 2 ;;
        esac
        OMP_NUM_THREADS=1 vla train --config "config/train/default_checkpoint_$stage.yaml" \
            --set "datasets=[${sources%,}]" --set output_dir="$run" "${settings[@]}" > "$run.log" 2>&1 \
            || { tail -n 30 "$run.log" >&2; return 1; }
        previous=$(newest "$run")
    done
    echo "$previous"
}
# The SO-101's demonstrations are two datasets collected side by side, one per core (an episode
# renders two 224 px cameras and solves the teleoperator's lines by IK, about 9 s on one core).
so101_first=$((SO101_EPISODES / 2))
collect so101 "$so101_first" 0 "$WORK/data/so101_pick_0" &
first_half=$!
collect so101 $((SO101_EPISODES - so101_first)) "$so101_first" "$WORK/data/so101_pick_1"
wait "$first_half"
collect aloha "$ALOHA_EPISODES" 0 "$WORK/data/aloha_pick"
rm -rf "$WORK/run" "$WORK"/run_* "$WORK/feature_cache"
vla train --config config/train/default_checkpoint.yaml ${STEPS:+--set steps="$STEPS"}
# each robot's own stages side by side, one core each
train_robot so101 "$SO101_STAGES" "$WORK/data/so101_pick_0" "$WORK/data/so101_pick_1" > "$WORK/so101_policy" &
so101_training=$!
train_robot aloha "$ALOHA_STAGES" "$WORK/data/aloha_pick" > "$WORK/aloha_policy"
wait "$so101_training"
rm -rf "$TARGET"
for robot in so101 aloha; do
    policy=$(cat "$WORK/${robot}_policy")
    mkdir -p "$TARGET/$robot"
    cp -r "$policy/." "$TARGET/$robot/"
    cp "${policy%/checkpoints/*}/metrics.jsonl" "${policy%/checkpoints/*}/loss_curve.png" "$TARGET/$robot/"
done
python -c "from vla_core.policy_set import write_policy_set; write_policy_set('$TARGET', {'so101': 'so101', 'aloha': 'aloha'})"
evaluate() {  # ROBOT: the evaluation seeds in the default (ensemble) mode, both wordings, on one core
    vla eval --checkpoint "$TARGET" --embodiment "$1" --task pick_cube --episodes "$EVAL_EPISODES" \
        --wording training,held_out --mode ensemble --torch-threads 1 --output "$TARGET/eval/$1" \
        > "$WORK/eval_$1.log" 2>&1 || { tail -n 30 "$WORK/eval_$1.log" >&2; return 1; }
}
evaluate so101 &
so101_evaluation=$!
evaluate aloha
wait "$so101_evaluation"
python scripts/write_model_card.py --checkpoint "$TARGET" \
    --command "${STEPS:+STEPS=$STEPS }EVAL_EPISODES=$EVAL_EPISODES make checkpoint"
echo "policy set in $TARGET, model card $TARGET/README.md, evaluation in $TARGET/eval/{so101,aloha}/results.md"
