#!/usr/bin/env bash
# The loop closed in one command sequence: teleoperated demonstrations of a new task in the
# simulation -> rosbag2 episodes -> LeRobot v3.0 dataset -> the shipped policy fine-tuned on them
# -> deployed with the policy node over DDS -> evaluated in closed loop.
#
#   scripts/teleop_to_policy.sh [BASE_CHECKPOINT]        (default checkpoints/default; `make loop`)
#
# The new task is cube_in_bin on the SO-101 ("put the <colour> cube in the bin"), which the
# shipped checkpoint was not trained on. Stages, each printed with its wall time:
#   1. record:  sim_node (MuJoCo, simulated time), scripted_teleop (the leader arm) and
#               `vla record` as separate processes; `record_demonstrations` presses start/stop
#   2. convert: `vla convert` of the bags into one LeRobot v3.0 dataset
#   3. train:   `vla train --config config/train/finetune_new_robot.yaml --set init_from=BASE`
#   4. deploy:  sim_node and `vla up` with the fine-tuned checkpoint; one instructed episode
#               (`instructed_episode`) over DDS, success printed
#   5. eval:    `vla eval` of the fine-tuned checkpoint on cube_in_bin
#
# Sizes and settings (environment):
#   EPISODES=30          successful demonstrations to record
#   STEPS=2000           optimizer steps of the fine-tuning (CPU: ~24 samples/s, so ~45 min at batch 32)
#   BATCH_SIZE=          samples per step (default: the config's 32)
#   EVAL_EPISODES=10     evaluation episodes per wording
#   EVAL_WORDING=training,held_out   EVAL_MODE=async   EVAL_TIME_LIMIT= (default: the task's 25 s)
#   DEPLOY_SECONDS=30    simulated seconds the deployed policy gets
#   PICK_DATASET=        a LeRobot v3.0 so101 pick_cube dataset to keep in the mixture (off by default)
#   CAMERA_RATE_HZ=30    simulated camera rate (recording and deploying)
#   IMAGE_SIZE=224       simulated camera images while recording (deploying uses the profile's 224)
#   SEED_BASE=0          seed of the first demonstration (ranges in src/vla_core/vla_core/seeds.py:
#                        demonstrations 0-999, evaluation 10000+)
#   LOOP_DIR=outputs/loop  where everything goes (must not exist yet, or be empty)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=../env.sh
source "$ROOT/env.sh"

BASE=${1:-checkpoints/default}
EPISODES=${EPISODES:-30}
STEPS=${STEPS:-2000}
BATCH_SIZE=${BATCH_SIZE:-}
EVAL_EPISODES=${EVAL_EPISODES:-10}
EVAL_WORDING=${EVAL_WORDING:-training,held_out}
EVAL_MODE=${EVAL_MODE:-async}
EVAL_TIME_LIMIT=${EVAL_TIME_LIMIT:-}
DEPLOY_SECONDS=${DEPLOY_SECONDS:-30}
PICK_DATASET=${PICK_DATASET:-}
IMAGE_SIZE=${IMAGE_SIZE:-224}
CAMERA_RATE_HZ=${CAMERA_RATE_HZ:-30}
SEED_BASE=${SEED_BASE:-0}
LOOP_DIR=${LOOP_DIR:-outputs/loop}
[[ $CAMERA_RATE_HZ == *.* ]] || CAMERA_RATE_HZ=$CAMERA_RATE_HZ.0  # a ROS double parameter
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-43}
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
EMBODIMENT=so101
TASK=cube_in_bin

fail() { echo "teleop_to_policy: $*" >&2; exit 1; }
# a policy set (checkpoints/default: one checkpoint per robot) is fine-tuned through its member for this robot
BASE=$(python -c "import sys; from vla_core.policy_set import member_for; print(member_for(sys.argv[1], sys.argv[2]))" \
       "$BASE" "$EMBODIMENT") || fail "base checkpoint $BASE has no checkpoint for $EMBODIMENT"
[ -f "$BASE/model.safetensors" ] && [ -f "$BASE/embodiments.json" ] \
    || fail "base checkpoint $BASE has no model.safetensors/embodiments.json (pass a checkpoint directory, e.g. from 'vla init-checkpoint --output DIR')"
python -c "import json, sys; sys.exit('$EMBODIMENT' not in json.load(open('$BASE/embodiments.json')))" \
    || fail "base checkpoint $BASE was not trained for $EMBODIMENT (embodiments.json)"
[ -z "$PICK_DATASET" ] || [ -f "$PICK_DATASET/meta/info.json" ] \
    || fail "PICK_DATASET=$PICK_DATASET is not a LeRobot v3.0 dataset (no meta/info.json)"
if [ -d "$LOOP_DIR" ] && [ -n "$(ls -A "$LOOP_DIR")" ]; then
    fail "$LOOP_DIR is not empty: remove it or set LOOP_DIR to a new directory"
fi
mkdir -p "$LOOP_DIR/logs"
LOOP_DIR=$(cd "$LOOP_DIR" && pwd)
BAGS=$LOOP_DIR/bags DATASET=$LOOP_DIR/dataset TRAIN=$LOOP_DIR/train EVAL=$LOOP_DIR/eval LOGS=$LOOP_DIR/logs

# ---- background nodes: started with their output in logs/, stopped with SIGINT (then SIGKILL) ----
PIDS=()
start_node() {  # NAME COMMAND...
    local name=$1; shift
    "$@" > "$LOGS/$name.log" 2>&1 &
    PIDS+=("$!")
    echo "  started $name (pid $!, log $LOGS/$name.log)"
}
wait_ready() {  # NAME: until the node's log says READY; fail if it exits first
    local name=$1 pid=${PIDS[-1]} deadline=$((SECONDS + 120))
    until grep -qsx READY "$LOGS/$name.log"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOGS/$name.log" >&2; fail "$name exited (log above)"; }
        [ $SECONDS -lt $deadline ] || fail "$name did not start within 120 s (see $LOGS/$name.log)"
        sleep 0.2
    done
}
stop_nodes() {
    local pid
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_nodes EXIT
# the deployed policy node checks image sizes against the profile (224 x 224, sim_node's default)
SIM_ARGS=(--ros-args -p "embodiment:=$EMBODIMENT" -p "task:=$TASK" -p "camera_rate_hz:=$CAMERA_RATE_HZ"
          -p real_time_factor:=1.0)

# ---- stages, timed ----
LOOP_START=$SECONDS
SUMMARY=()
stage() {  # NAME: what it does
    STAGE_NAME=$1 STAGE_START=$SECONDS
    echo; echo "== [$(date +%H:%M:%S)] $1: $2"
}
stage_done() {
    local took=$((SECONDS - STAGE_START))
    SUMMARY+=("$(printf '%-8s %5d s  %s' "$STAGE_NAME" "$took" "$1")")
    echo "== $STAGE_NAME done in ${took} s: $1"
}

echo "vla_ros loop: $EMBODIMENT $TASK, base checkpoint $BASE, $EPISODES episodes, $STEPS steps, into $LOOP_DIR"

stage record "$EPISODES demonstrations by the scripted leader arm, recorded as rosbag2 episodes"
start_node sim python -m vla_sim.sim_node "${SIM_ARGS[@]}" -p "image_size:=$IMAGE_SIZE" -p "seed:=$SEED_BASE"
wait_ready sim
start_node teleop python -m vla_sim.scripted_teleop --ros-args -p "embodiment:=$EMBODIMENT" -p use_sim_time:=true
wait_ready teleop
start_node recorder vla record --embodiment "$EMBODIMENT" --output-dir "$BAGS" --use-sim-time
python -m vla_sim.record_demonstrations --episodes "$EPISODES" --seed-base "$SEED_BASE" | tee "$LOGS/record_demonstrations.log"
stop_nodes
stage_done "$(find "$BAGS" -maxdepth 2 -name metadata.yaml | wc -l) episodes in $BAGS"

stage convert "rosbag2 -> LeRobot v3.0"
vla convert "$BAGS" --output "$DATASET" --embodiment "$EMBODIMENT" --no-progress | tee "$LOGS/convert.log"
stage_done "dataset $DATASET"

stage train "fine-tune $BASE on $TASK"
MIXTURE="{path: $DATASET}"
[ -z "$PICK_DATASET" ] || MIXTURE+=", {path: $(cd "$PICK_DATASET" && pwd)}"
TRAIN_SET=(--set "init_from=$(cd "$BASE" && pwd)" --set "datasets=[$MIXTURE]" --set "steps=$STEPS"
           --set "output_dir=$TRAIN" --set "save_every=$STEPS")
[ -z "$BATCH_SIZE" ] || TRAIN_SET+=(--set "batch_size=$BATCH_SIZE" --set "micro_batch_size=$BATCH_SIZE")
vla train --config config/train/finetune_new_robot.yaml "${TRAIN_SET[@]}" 2>&1 | tee "$LOGS/train.log"
CHECKPOINT=$(sed -n 's/^final checkpoint: //p' "$LOGS/train.log" | tail -n 1)
[ -f "$CHECKPOINT/model.safetensors" ] || fail "vla train wrote no checkpoint (see $LOGS/train.log)"
stage_done "checkpoint $CHECKPOINT"

stage deploy "the fine-tuned policy on the simulated robot: policy node + executor over DDS, one instructed episode"
start_node sim_deploy python -m vla_sim.sim_node "${SIM_ARGS[@]}"
wait_ready sim_deploy
start_node up vla up --checkpoint "$CHECKPOINT" --embodiment "$EMBODIMENT" --use-sim-time
python -m vla_sim.instructed_episode --embodiment "$EMBODIMENT" --time-limit "$DEPLOY_SECONDS" \
    | tee "$LOGS/deploy.log"
stop_nodes
stage_done "$(grep -o 'success: [a-z]*' "$LOGS/deploy.log" | tail -n 1)"

stage eval "closed-loop success rate of the fine-tuned checkpoint on $TASK"
EVAL_ARGS=(--checkpoint "$CHECKPOINT" --embodiment "$EMBODIMENT" --task "$TASK" --episodes "$EVAL_EPISODES"
           --wording "$EVAL_WORDING" --mode "$EVAL_MODE" --output "$EVAL")
[ -z "$EVAL_TIME_LIMIT" ] || EVAL_ARGS+=(--time-limit "$EVAL_TIME_LIMIT")
vla eval "${EVAL_ARGS[@]}" | tee "$LOGS/eval.log"
stage_done "$EVAL/results.md"

echo; echo "== the loop in $((SECONDS - LOOP_START)) s:"
printf '   %s\n' "${SUMMARY[@]}"
