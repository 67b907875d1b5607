"""Closed-loop evaluation: the loop can register success (scripted oracle), simulated latency is
real (async keeps executing committed rows, sync holds), and `vla eval` writes its reports."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vla_core.cli import build_parser
from vla_core.embodiment import load_embodiment
from vla_core.evaluation import EVAL_SEED_BASE
from vla_core.evaluation.closed_loop import ClosedLoop, ExecutionSettings
from vla_core.evaluation.environments import sim_task
from vla_core.evaluation.policies import CheckpointPolicy, ScriptedOracle
from vla_core.evaluation.runner import EvaluationPlan, evaluate
from vla_core.evaluation.report import markdown_table
from vla_core.evaluation.summary import CellKey, summarise, wilson_interval
from vla_core.runtime.scheduling import ExecutionMode
from vla_core.sim.scripted_pick import SO101_GRASP

ROOT = Path(__file__).resolve().parents[2]
LATENCY = 0.12  # s: 3.6 control periods at 30 Hz, so a chunk arrives 4 ticks after its observation
# m: the SO-101's tool frame sits on its fixed jaw, 3.4 cm from the middle between the open pads, which a
# grasp puts on the cube's centre; 5 mm more for the servos' lag
GRASPED = SO101_GRASP.jaw_offset + 0.005


@pytest.fixture(scope="module")
def spec():
    return load_embodiment("so101")


@pytest.fixture(scope="module")
def scene(spec):
    scene = sim_task("so101", "pick_cube").make_scene(spec.cameras[0].width)
    yield scene
    scene.close()


def oracle_loop(spec, scene, mode: str) -> ClosedLoop:
    return ClosedLoop(sim_task("so101", "pick_cube"), spec, ScriptedOracle(spec),
                      ExecutionSettings(mode=ExecutionMode(mode)), scene=scene, latency=LATENCY)


def test_wilson_interval_matches_hand_computed_values() -> None:
    np.testing.assert_allclose(wilson_interval(0, 10), (0.0, 0.27753), atol=1e-5)
    np.testing.assert_allclose(wilson_interval(5, 10), (0.23659, 0.76341), atol=1e-5)
    np.testing.assert_allclose(wilson_interval(20, 20), (0.83887, 1.0), atol=1e-5)
    # exactly 0 and 1 at the ends (rounding once gave 2.8e-17 for 0/6 and a negative error bar)
    assert all(wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0 for n in range(1, 101))
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_async_with_latency_executes_every_planned_step_exactly_once(spec, scene) -> None:
    result = oracle_loop(spec, scene, "async").run(EVAL_SEED_BASE, time_limit=10.0)
    assert result.success, "the scripted oracle must pick the cube through the evaluation loop"
    assert result.closest_approach < GRASPED, "the oracle's jaws close around the named cube"
    trace = result.trace
    commanded = [i for i, chunk in enumerate(trace.chunk_ids) if chunk]
    assert commanded and commanded == list(range(commanded[0], len(trace.chunk_ids)))  # no hold, no starved tick
    assert result.starved_ticks == 0 and result.held_ticks == 0
    assert result.refused_ticks == 0 and result.target_ticks == len(commanded)
    # row j of a chunk observed at tick r is meant for tick r + 1 + j: every tick runs its own step
    for tick in commanded:
        chunk, row = trace.chunk_ids[tick], trace.rows[tick]
        assert trace.request_ticks[chunk] + 1 + row == tick
    # each later chunk takes over 4 ticks after its observation: the committed rows ran meanwhile
    switches = [tick for tick in commanded[1:] if trace.chunk_ids[tick] != trace.chunk_ids[tick - 1]]
    assert len(switches) >= 5
    delay = math.ceil(LATENCY * spec.control_rate_hz)
    assert all(tick - trace.request_ticks[trace.chunk_ids[tick]] == delay for tick in switches)


class VelocityRecordingOracle(ScriptedOracle):
    """The scripted oracle, noting the tick and the observation of every chunk it is asked for."""

    def __init__(self, spec, scene) -> None:
        super().__init__(spec)
        self.seen: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.clock = scene

    def predict_chunk(self, observation, instruction, embodiment, prefix=None, seed=None):
        tick = round(self.clock.time * self.spec.control_rate_hz)
        self.seen.append((tick, observation.state.copy(), observation.joint_velocity.copy()))
        return super().predict_chunk(observation, instruction, embodiment, prefix, seed)


def test_the_policy_sees_the_joints_velocity_over_the_last_control_period(spec, scene) -> None:
    oracle = VelocityRecordingOracle(spec, scene)
    loop = ClosedLoop(sim_task("so101", "pick_cube"), spec, oracle, ExecutionSettings(mode=ExecutionMode.ASYNC),
                      scene=scene, latency=LATENCY)
    measured = loop.run(EVAL_SEED_BASE, time_limit=3.0).trace.measured  # per tick, after its request
    (first_tick, _, first_velocity), *later = oracle.seen
    assert first_tick == 0 and np.all(first_velocity == 0)  # at rest after the reset
    assert len(later) >= 5
    for tick, state, velocity in later:
        np.testing.assert_allclose(state, measured[tick])
        np.testing.assert_allclose(velocity, (measured[tick] - measured[tick - 1]) * spec.control_rate_hz, atol=1e-9)
    assert max(np.abs(velocity).max() for _, _, velocity in later) > 0.1  # the arm is on its way


def test_sync_holds_while_the_chunk_is_inferred_and_still_succeeds(spec, scene) -> None:
    result = oracle_loop(spec, scene, "sync").run(EVAL_SEED_BASE, time_limit=10.0)
    assert result.success
    trace = result.trace
    chunks = sorted(trace.request_ticks, key=trace.request_ticks.get)
    delay = math.ceil(LATENCY * spec.control_rate_hz)
    for chunk in chunks[1:]:  # requested with the last executed row; the robot waits, then plays row 0
        request = trace.request_ticks[chunk]
        first = trace.chunk_ids.index(chunk)
        assert trace.rows[request] == ExecutionSettings().execute_steps - 1
        assert first - request == delay and trace.rows[first] == 0
        assert all(np.isnan(trace.commands[t]).all() for t in range(request + 1, first))
    assert result.held_ticks >= (len(chunks) - 1) * (delay - 1)
    assert result.starved_ticks == 0


def test_ensemble_requests_at_the_params_files_interval(spec, scene, tmp_path) -> None:
    """The executor's ensemble_interval reaches the loop: a request every 6 ticks, not every tick the
    previous answer allows (4 ticks at this latency), and the averaged chunks still pick the cube."""
    params = tmp_path / "policy.yaml"
    params.write_text("vla_executor:\n  ros__parameters:\n    mode: ensemble\n    ensemble_interval: 6\n"
                      "    ensemble_decay: 0.01\n")
    settings = ExecutionSettings.from_params_file(params)
    assert (settings.mode, settings.ensemble_interval) == (ExecutionMode.ENSEMBLE, 6)
    loop = ClosedLoop(sim_task("so101", "pick_cube"), spec, ScriptedOracle(spec), settings, scene=scene,
                      latency=LATENCY)
    result = loop.run(EVAL_SEED_BASE, time_limit=10.0)
    assert result.success
    requests = sorted(result.trace.request_ticks.values())
    assert len(requests) > 10 and set(np.diff(requests)) == {6}


class OutOfReachOracle(ScriptedOracle):
    """The oracle's chunks moved 1 m along the tool's x axis: no SO-101 pose reaches them."""

    def predict_chunk(self, *args, **kwargs):
        chunk = super().predict_chunk(*args, **kwargs)
        chunk.actions[:, 0] += 1.0
        return chunk


def test_targets_out_of_reach_are_refused_and_counted(spec, scene) -> None:
    loop = ClosedLoop(sim_task("so101", "pick_cube"), spec, OutOfReachOracle(spec),
                      ExecutionSettings(mode=ExecutionMode.ASYNC), scene=scene, latency=LATENCY)
    result = loop.run(EVAL_SEED_BASE, time_limit=1.0)
    assert not result.success and result.target_ticks > 20
    assert result.refused_ticks == result.target_ticks == result.safety_counts["non_finite_target"]
    # the arm held where it started, so the nearest it came is where it started (servo sag aside)
    definition = sim_task("so101", "pick_cube")
    scene.reset(EVAL_SEED_BASE)
    at_start = definition.tool_distance(scene, definition.draw_task(EVAL_SEED_BASE, scene))
    assert at_start > GRASPED + 0.05 and result.closest_approach == pytest.approx(at_start, abs=0.01)
    summary = summarise(CellKey("so101", "pick_cube", "training", "async"), [result])
    assert summary.refused_fraction == 1.0 and summary.failed_closest_approach == result.closest_approach
    assert "| 0 | 100% |" in markdown_table([summary])
    assert markdown_table([summary]).rstrip().endswith(f"| {result.closest_approach * 100:.1f} |")


def test_execution_settings_come_from_the_executor_parameter_file(tmp_path) -> None:
    settings = ExecutionSettings.from_params_file(ROOT / "config" / "policy.yaml", mode=ExecutionMode.SYNC)
    assert settings.mode is ExecutionMode.SYNC and settings.execute_steps == 8 and len(settings.workspace) == 6
    with pytest.raises(ValueError, match="vla_executor"):
        (tmp_path / "other.yaml").write_text("vla_policy:\n  ros__parameters: {seed: 1}\n")
        ExecutionSettings.from_params_file(tmp_path / "other.yaml")


def test_bad_plans_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="available: so101/pick_cube"):
        EvaluationPlan(["so101"], ["stack_cups"], ["training"], ["sync"], 1)
    with pytest.raises(ValueError, match="wordings"):
        EvaluationPlan(["so101"], ["pick_cube"], ["casual"], ["sync"], 1)
    with pytest.raises(ValueError, match="modes"):
        EvaluationPlan(["so101"], ["pick_cube"], ["training"], ["fast"], 1)
    args = build_parser().parse_args(["eval", "--oracle", "--output", "x", "--mode", "sync,async"])
    assert args.mode == ["sync", "async"] and args.seed_base == EVAL_SEED_BASE


def test_a_checkpoint_is_refused_unless_it_drives_the_profile_as_trained(tmp_path) -> None:
    """The loop decodes chunks with the profile: a checkpoint trained for another robot, action
    space or horizon must be refused by name instead of being mis-decoded."""
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    checkpoint = write_initial_checkpoint(["so101"], tmp_path / "bringup")
    assert CheckpointPolicy.load(str(checkpoint), ["so101"]).backends["so101"].requirements.action_space == "eef_relative"
    with pytest.raises(ValueError, match=r"trained for \['so101'\], not for embodiment 'aloha'"):
        CheckpointPolicy.load(str(checkpoint), ["aloha"])
    profiles = json.loads((checkpoint / "embodiments.json").read_text())
    profiles["so101"]["action_space"] = "abs_eef"  # same channels, another meaning
    (checkpoint / "embodiments.json").write_text(json.dumps(profiles))
    with pytest.raises(ValueError, match="has action_space 'abs_eef' for so101, the profile .*so101.yaml has "
                                         "'eef_relative'"):
        CheckpointPolicy.load(str(checkpoint), ["so101"])


@pytest.mark.slow
def test_evaluating_the_bringup_checkpoint_counts_and_writes_reports(tmp_path, spec) -> None:
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    import torch

    checkpoint = write_initial_checkpoint(["so101"], tmp_path / "bringup")
    policy = CheckpointPolicy.load(str(checkpoint), ["so101"])
    plan = EvaluationPlan(["so101"], ["pick_cube"], ["held_out"], ["sync", "async"], episodes=2, time_limit=0.6,
                          latency=0.05, pictures=True)  # fixed latency: chunks every 8 ticks, whatever the load
    lines: list[str] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `vla eval` does: no OpenMP spin-waiting on a shared CPU
    try:
        summaries = evaluate(plan, lambda _: policy, ExecutionSettings(), tmp_path / "out", "bring-up", lines.append)
    finally:
        torch.set_num_threads(threads)
    assert [s.key.mode for s in summaries] == ["sync", "async"]
    for summary in summaries:
        assert summary.episodes == 2 and summary.successes == 0  # it barely moves: the cube stays down
        assert summary.wilson_low == 0.0 and 0.5 < summary.wilson_high < 0.9
        assert summary.chunks >= 2 * 2 and summary.latency_median > 0
    assert sum("episode" in line for line in lines) == 4
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [e["seed"] for e in results["episodes"]["so101/pick_cube/held_out/async"]] == [10_000, 10_001]
    assert "| so101 | pick_cube | held_out | async | 0/2 (0%)" in (tmp_path / "out" / "results.md").read_text()
    for name in ("success_rate.png", "strip_so101_pick_cube_held_out_sync.png",
                 "joints_so101_pick_cube_held_out_async.png"):
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "PNG" and image.width > 200 and np.asarray(image).std() > 5


@pytest.mark.parametrize("embodiment, task", [("aloha", "pick_cube"), ("aloha", "cube_in_bin")])
def test_the_loop_is_generic_over_embodiments_and_tasks(embodiment, task) -> None:
    spec = load_embodiment(embodiment)
    loop = ClosedLoop(sim_task(embodiment, task), spec, ScriptedOracle(spec), ExecutionSettings(), latency=LATENCY)
    try:
        result = loop.run(EVAL_SEED_BASE)
    finally:
        loop.close()
    assert result.success and result.starved_ticks == 0
