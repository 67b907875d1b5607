"""Chunk scheduling: the executed sequence has no skipped or repeated step, whatever the latency."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vla_core.runtime.scheduling import ChunkScheduler, ExecutionMode, SchedulerConfig

HORIZON = 16
EXECUTE_STEPS = 8


def trajectory(tick: int | np.ndarray) -> np.ndarray:
    """The motion an ideal policy predicts: smooth, and different at every tick."""
    t = np.asarray(tick, dtype=np.float64) * 0.05
    return np.stack([np.sin(t), np.cos(t), t], axis=-1)


def run(scheduler: ChunkScheduler, latency: int, ticks: int, offset_of_request=lambda request_id: 0.0):
    """Drive `scheduler` with a policy that answers after `latency` ticks.

    The policy's chunk for a request at tick r has row j = trajectory(r + 1 + j) plus
    `offset_of_request(request_id)`: a number, or an (H, 1) column with one value per row.
    Returns the decisions of every tick.
    """
    in_flight: list[tuple[int, int, np.ndarray]] = []  # (due tick, request id, targets)
    decisions = []
    chunk_id = 0
    for tick in range(ticks):
        for due, request_id, targets in [item for item in in_flight if item[0] <= tick]:
            chunk_id += 1
            scheduler.on_chunk(request_id, chunk_id, targets, arrival_tick=tick)
            in_flight.remove((due, request_id, targets))
        decision = scheduler.tick(tick)
        decisions.append(decision)
        if decision.request is not None:
            request = decision.request
            rows = trajectory(np.arange(request.tick + 1, request.tick + 1 + HORIZON))
            rows = rows + offset_of_request(request.request_id)
            in_flight.append((tick + max(latency, 1), request.request_id, rows))
    return decisions


# (Te, latency): with one request in flight the answer must come within about H / 2 ticks; a
# Te that would leave fewer rows than the latency needs is brought forward (12 + 6 > 16)
@pytest.mark.parametrize(("execute_steps", "latency"), [(EXECUTE_STEPS, 0), (EXECUTE_STEPS, 1), (EXECUTE_STEPS, 3),
                                                        (EXECUTE_STEPS, 7), (EXECUTE_STEPS, 8), (12, 6), (15, 3)])
def test_async_executes_every_step_once_and_never_starves(execute_steps: int, latency: int) -> None:
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.ASYNC, HORIZON, execute_steps))
    decisions = run(scheduler, latency, ticks=200)
    first = next(i for i, d in enumerate(decisions) if d.target is not None)
    executed = decisions[first:]
    assert all(d.target is not None for d in executed), "a control tick went without a command"
    # with an ideal policy the executed target at tick t is the trajectory at t: nothing skipped
    # or repeated at any chunk boundary
    targets = np.stack([d.target for d in executed])
    np.testing.assert_allclose(targets, trajectory(np.arange(first, 200)), atol=1e-12)
    switches = [i for i in range(1, len(executed)) if executed[i].chunk_id != executed[i - 1].chunk_id]
    assert len(switches) >= 10


@pytest.mark.parametrize("latency", [1, 3, 7])
def test_async_commits_a_prefix_at_least_as_long_as_the_measured_latency(latency: int) -> None:
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.ASYNC, HORIZON, EXECUTE_STEPS))
    decisions = run(scheduler, latency, ticks=120)
    requests = [d.request for d in decisions if d.request is not None]
    later = requests[3:]
    assert later and all(len(r.committed_rows) >= latency for r in later)
    for request in later:
        # the committed rows are what the executor runs right after the request
        expected = trajectory(np.arange(request.tick + 1, request.tick + 1 + len(request.committed_rows)))
        np.testing.assert_allclose(request.committed_rows, expected, atol=1e-12)


@pytest.mark.parametrize("latency", [1, 3, 7])
def test_sync_plays_execute_steps_rows_in_order_then_holds_while_waiting(latency: int) -> None:
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.SYNC, HORIZON, EXECUTE_STEPS))
    decisions = run(scheduler, latency, ticks=150)
    rows_by_chunk: dict[int, list[int]] = {}
    for d in decisions:
        if d.target is not None:
            rows_by_chunk.setdefault(d.chunk_id, []).append(d.row)
    complete = [rows for rows in list(rows_by_chunk.values())[:-1]]
    assert len(complete) >= 5
    assert all(rows == list(range(EXECUTE_STEPS)) for rows in complete)
    # an answer usable `latency` ticks after the request leaves latency - 1 ticks held in between
    active = [tick for tick, d in enumerate(decisions) if d.target is not None]
    chunk_of = {tick: decisions[tick].chunk_id for tick in active}
    held_between = [b - a - 1 for a, b in zip(active, active[1:]) if chunk_of[a] != chunk_of[b]]
    assert len(held_between) >= 5 and set(held_between) == {latency - 1}


def test_ensembling_weights_the_oldest_prediction_most() -> None:
    decay = 0.5
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.ENSEMBLE, HORIZON, EXECUTE_STEPS,
                                               ensemble_interval=4, ensemble_decay=decay))
    # request k (id k + 1, made at tick 4k) is offset by k and covers ticks 4k+1 .. 4k+HORIZON
    decisions = run(scheduler, latency=1, ticks=60, offset_of_request=lambda request_id: float(request_id - 1))
    targets = [(tick, d.target) for tick, d in enumerate(decisions) if d.target is not None]
    assert len(targets) > 30
    tick, target = targets[30]
    covering = [k for k in range(20) if 4 * k + 1 <= tick < 4 * k + 1 + HORIZON]
    assert len(covering) >= 3
    weights = np.array([math.exp(-decay * i) for i in range(len(covering))])
    expected_offset = float((weights * np.array(covering, dtype=float)).sum() / weights.sum())
    np.testing.assert_allclose(target, trajectory(tick) + expected_offset, atol=1e-9)


def test_ensembling_leaves_out_rows_a_chunk_could_not_reach() -> None:
    """An unreachable row (NaN from the decoder) of one chunk must not hold the robot while
    other chunks cover that tick; a tick only unreachable rows cover is a hold (NaN)."""
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.ENSEMBLE, HORIZON, EXECUTE_STEPS, ensemble_interval=2))
    rows_1_4_7_unreachable = np.where(np.arange(HORIZON)[:, None] % 3 == 1, np.nan, 0.0)
    decisions = run(scheduler, latency=1, ticks=80,
                    offset_of_request=lambda request_id: rows_1_4_7_unreachable if request_id % 2 else 0.0)
    # the first chunk (request 1 at tick 0) alone covers ticks 1 and 2; its row 1 is for tick 2
    np.testing.assert_allclose(decisions[1].target, trajectory(1), atol=1e-12)
    assert np.all(np.isnan(decisions[2].target))
    steady = range(HORIZON, 80)
    assert all(np.all(np.isfinite(decisions[tick].target)) for tick in steady)
    np.testing.assert_allclose(np.stack([decisions[tick].target for tick in steady]), trajectory(np.arange(HORIZON, 80)),
                               atol=1e-12)


def test_an_answer_to_an_unknown_request_is_refused() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.ASYNC, HORIZON, EXECUTE_STEPS))
    request = scheduler.tick(0).request
    assert request is not None
    with pytest.raises(ValueError, match="outstanding request is 1"):
        scheduler.on_chunk(request.request_id + 5, 1, trajectory(np.arange(1, 17)), arrival_tick=1)
    with pytest.raises(ValueError, match=r"targets must be \(H, D\)"):
        scheduler.on_chunk(request.request_id, 1, np.zeros(4), arrival_tick=1)


def test_reset_needs_a_fresh_chunk_before_moving_again() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(ExecutionMode.ASYNC, HORIZON, EXECUTE_STEPS))
    decisions = run(scheduler, latency=1, ticks=10)
    assert decisions[-1].target is not None
    scheduler.reset()
    after = scheduler.tick(10)
    assert after.target is None and after.request is not None and after.request.source_chunk_id == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"horizon": 0}, "horizon must be >= 1"),
        ({"execute_steps": 17}, "execute_steps must be in 1..horizon=16"),
        ({"execute_steps": 16, "min_prefix": 1}, "async needs execute_steps \\+ min_prefix <= horizon"),
        ({"ensemble_interval": 0}, "ensemble_interval must be >= 1"),
    ],
)
def test_bad_configuration_is_refused_with_its_name(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SchedulerConfig(**kwargs)
