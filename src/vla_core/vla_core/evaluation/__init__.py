"""Closed-loop evaluation of policies in the MuJoCo simulation, in-process and without ROS.

The loop runs a checkpoint through the executor node's own control step and the policy node's
observation and prefix (`vla_core.runtime.control_step`, `vla_core.runtime.policy_inputs`) with
simulated time as the truth, so hundreds of episodes fit in the time a handful would take over
DDS. `vla eval` (`command.py`) runs grids of (embodiment, task, wording, mode) cells and writes
Markdown, JSON and PNG reports.

Seeds: evaluation episodes use seeds from `EVAL_SEED_BASE` (10 000, `vla_core.seeds.EVALUATION`)
up; demonstrations for training are recorded with seeds below it, so no evaluated scene was ever
trained on.
"""
from vla_core.seeds import EVALUATION

EVAL_SEED_BASE = EVALUATION.start
