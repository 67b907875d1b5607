"""The control step the executor node and `vla eval` share: what it commands, when it holds, and
which answers it takes (tests/ros/test_control_step_parity.py drives both callers with it)."""
from __future__ import annotations

import numpy as np
import pytest

from vla_core.embodiment import load_embodiment
from vla_core.runtime.control_step import ControlStep, ExecutionSettings, StepState
from vla_core.runtime.decoding import ChunkDecoder
from vla_core.runtime.scheduling import ExecutionMode

DT = 1.0 / 30


@pytest.fixture(scope="module")
def spec():
    return load_embodiment("so101")


@pytest.fixture(scope="module")
def decoder(spec):
    return ChunkDecoder(spec)


def rest(decoder: ChunkDecoder) -> np.ndarray:
    lower, upper = decoder.kinematics.position_limits()
    return (lower + upper) / 2


def ramp(start: np.ndarray, rows: int) -> np.ndarray:
    """Rows moving every joint 0.01 rad a tick from `start`: within every limit of the filter."""
    return start + 0.01 * np.arange(1, rows + 1)[:, None]


def tick(step: ControlStep, joints: np.ndarray, index: int):
    """One tick at `index` control periods, the joint state of that instant fed first."""
    step.observe_joints(joints, index * DT)
    return step.tick(index * DT)


def test_sync_commands_the_chunk_then_holds_its_last_row_while_it_waits(spec, decoder) -> None:
    step = ControlStep(spec, decoder, ExecutionSettings(mode=ExecutionMode.SYNC))
    joints = rest(decoder)
    step.observe_joints(joints, 0.0)
    first = step.tick(0.0)
    assert first.request is not None and first.command is None and first.state is StepState.WAITING
    np.testing.assert_array_equal(first.request.ik_seed, joints)  # IK for the answer starts where it was asked
    targets = ramp(joints, spec.chunk_size)
    assert step.on_chunk(first.request, 1, targets, 0.0)
    execute = ExecutionSettings().execute_steps
    outcomes = [tick(step, joints, index) for index in range(1, execute + 3)]
    running = outcomes[:execute]
    assert all(o.fresh and o.chunk_id == 1 for o in running) and [o.row for o in running] == list(range(execute))
    np.testing.assert_allclose(np.stack([o.command for o in running]), targets[:execute])
    assert running[0].new_chunk and len(running[0].lookahead) == execute - 1  # the rows sync will run
    waiting = outcomes[execute:]
    assert outcomes[execute - 1].request is not None  # asked with its last row
    assert all(o.holding and o.state is StepState.WAITING for o in waiting)
    assert all(np.array_equal(o.command, targets[execute - 1]) for o in waiting)
    assert step.counts["commands"] == execute


def test_a_watchdog_hold_is_counted_once_per_entry_and_a_stop_waits_for_a_fresh_chunk(spec, decoder) -> None:
    settings = ExecutionSettings(mode=ExecutionMode.ASYNC)
    step = ControlStep(spec, decoder, settings)
    joints = rest(decoder)
    step.observe_joints(joints, 0.0)
    request = step.tick(0.0).request
    step.on_chunk(request, 1, ramp(joints, spec.chunk_size), 0.0)
    for index in range(1, spec.chunk_size + 2):  # the next request is never answered: the chunk runs out
        outcome = tick(step, joints, index)
    now = index * DT
    last = step.counters()["commands"]
    assert outcome.holding and step.counts["starved_ticks"] >= 1
    quiet = now + settings.chunk_timeout + DT
    for index in range(3):
        step.observe_joints(joints, quiet + index * DT)
        outcome = step.tick(quiet + index * DT)
        assert outcome.state is StepState.HOLDING and outcome.detail.startswith("no chunk: chunks")
    assert step.counts["watchdog:chunks"] == 1 and step.holds >= 1 and step.counters()["commands"] == last
    outcome = step.tick(quiet + 1.0)  # no joint states for a second
    assert outcome.state is StepState.HOLDING and outcome.detail.startswith("no joint states")
    hold = outcome.command

    step.stop()
    step.observe_joints(joints, quiet + 1.0)
    stopped = step.tick(quiet + 1.0)
    assert stopped.state is StepState.STOPPED and stopped.request is None
    np.testing.assert_array_equal(stopped.command, hold)  # held where it was
    assert not step.cancel(request)  # the stop dropped everything
    assert step.resume()
    resumed = step.tick(quiet + 1.0 + DT)
    assert resumed.request is not None and resumed.holding  # asks for a fresh chunk, holding meanwhile


def test_answers_to_old_requests_change_nothing_and_idle_sends_nothing(spec, decoder) -> None:
    step = ControlStep(spec, decoder, ExecutionSettings(mode=ExecutionMode.ASYNC))
    joints = rest(decoder)
    step.observe_joints(joints, 0.0)
    old = step.tick(0.0).request
    assert step.cancel(old)  # refused: the scheduler asks again next tick
    new = tick(step, joints, 1).request
    assert new is not None and new.chunk.request_id != old.chunk.request_id
    assert not step.on_chunk(old, 1, ramp(joints, spec.chunk_size), DT)
    assert not step.go_idle(old)
    assert step.pending is new.chunk
    assert step.on_chunk(new, 1, ramp(joints, spec.chunk_size), DT)
    assert tick(step, joints, 2).fresh and step.commanding
    for index in range(3, 40):
        outcome = tick(step, joints, index)
        if outcome.request is not None:
            break
    assert step.go_idle(outcome.request) and not step.commanding
    idle = tick(step, joints, index + 1)
    assert idle.state is StepState.IDLE and idle.command is None
