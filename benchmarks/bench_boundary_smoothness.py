"""Jumps at chunk boundaries: synchronous, asynchronous with a committed prefix, naive switching.

The same closed loop runs three times on the same inputs (one recorded camera frame per tick,
the same noise seeds): a policy (the bring-up checkpoint: default architecture, untrained,
actions spread 2 mm around "stay") predicts SO-101 chunks in eef_relative; the executor logic
of the nodes (ChunkScheduler, ChunkDecoder with Pinocchio IK) plays them on a robot that
tracks its targets exactly; the policy answers LATENCY_TICKS ticks after each request.

- sync: execute 8 rows, wait for the next chunk, start it at its row 0;
- async: request after 8 rows, commit the rows that run meanwhile as the prefix
  (Xiaomi-Robotics-0), switch at the row that matches the latency;
- naive: the async timing without a prefix: the new chunk knows nothing of what was committed.

Reported, in millimetres of end-effector position: the seam at each switch (the executed
target minus what the previous chunk had planned for that tick: what switching itself adds),
the step between consecutive targets at switches, and the step inside chunks. With an
untrained policy the steps inside chunks are its noise; the seam shows what each mode adds.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from vla_core.bringup_checkpoint import write_initial_checkpoint
from vla_core.embodiment import load_embodiment
from vla_core.model.batching import Observation
from vla_core.model.policy import VLAPolicy
from vla_core.runtime.decoding import ChunkDecoder, ChunkStart
from vla_core.runtime.scheduling import ChunkScheduler, ExecutionMode, SchedulerConfig

from benchmarks.measure import Measurement

LATENCY_TICKS = 3
START = np.array([0.0, -0.5, 0.5, 0.3, 0.0, 0.5])


def recorded_frames(ticks: int) -> list[np.ndarray]:
    """A camera recording stand-in: a textured frame that drifts one pixel per tick."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (224, 224 + ticks, 3), dtype=np.uint8)
    return [texture[:, t: t + 224] for t in range(ticks)]


def closed_loop(policy: VLAPolicy, decoder: ChunkDecoder, frames: list[np.ndarray], mode: str
                ) -> tuple[list[np.ndarray], list[int], list[np.ndarray | None]]:
    """Executed joint targets, the chunk id of each, and what the previous chunk planned for
    that tick at each switch (None elsewhere, or where the previous chunk had no such row)."""
    spec = decoder.spec
    schedule = ExecutionMode.SYNC if mode == "sync" else ExecutionMode.ASYNC
    scheduler = ChunkScheduler(SchedulerConfig(schedule, spec.chunk_size, execute_steps=8))
    state = START.copy()
    served: dict[int, tuple[np.ndarray, ChunkStart]] = {}
    scheduler_targets: dict[int, np.ndarray] = {}
    in_flight: list[tuple[int, int, int, np.ndarray]] = []  # (arrival tick, request id, chunk id, targets)
    executed, chunk_ids, planned = [], [], []
    plans: dict[int, tuple[np.ndarray, int]] = {}  # chunk id -> (targets, tick of row 0)
    for tick, frame in enumerate(frames):
        for arrival, request_id, chunk_id, targets in [f for f in in_flight if f[0] == tick]:
            scheduler.on_chunk(request_id, chunk_id, targets, tick)
        in_flight = [f for f in in_flight if f[0] != tick]
        decision = scheduler.tick(tick)
        if decision.target is not None:
            state = decision.target
            previous = chunk_ids[-1] if chunk_ids else None
            plan = None
            if previous is not None and previous != decision.chunk_id:
                targets, first = plans[previous]
                plan = targets[tick - first] if tick - first < len(targets) else None
            plans.setdefault(decision.chunk_id, (scheduler_targets[decision.chunk_id], tick - decision.row))
            executed.append(state.copy())
            chunk_ids.append(decision.chunk_id)
            planned.append(plan)
        if decision.request is None:
            continue
        request = decision.request
        start = decoder.start_from_joints(state)
        prefix = None
        if mode == "async" and request.source_chunk_id:
            rows, source = served[request.source_chunk_id]
            first, count = request.source_start_step, len(request.committed_rows)
            prefix = decoder.reexpress(rows[: first + count], first, source, start)
        observation = Observation(frame, state, {"wrist": frame})
        chunk = policy.predict_chunk(observation, "pick up the cube", spec.name, prefix, seed=request.request_id)
        chunk_id = request.request_id
        served[chunk_id] = (chunk.actions, start)
        targets = decoder.joint_targets(chunk.actions, start, state).positions
        scheduler_targets[chunk_id] = targets
        in_flight.append((tick + LATENCY_TICKS, request.request_id, chunk_id, targets))
    return executed, chunk_ids, planned


def run(quick: bool) -> list[Measurement]:
    ticks = 120 if quick else 480
    spec = load_embodiment("so101")
    with tempfile.TemporaryDirectory() as tmp:
        policy = VLAPolicy.from_pretrained(write_initial_checkpoint(["so101"], Path(tmp) / "checkpoint"))
    decoder = ChunkDecoder(spec)
    frames = recorded_frames(ticks)
    measurements = []
    for mode in ("sync", "async", "naive"):
        executed, chunk_ids, planned = closed_loop(policy, decoder, frames, mode)
        position = lambda q: decoder.end_effector_positions(q)[0]  # noqa: E731
        positions = np.array([position(q) for q in executed])
        steps_mm = np.linalg.norm(np.diff(positions, axis=0), axis=1) * 1e3
        switch = np.array([chunk_ids[i + 1] != chunk_ids[i] for i in range(len(chunk_ids) - 1)])
        seams = [np.linalg.norm(position(plan) - positions[i]) * 1e3 for i, plan in enumerate(planned)
                 if plan is not None]
        notes = {"latency_ticks": LATENCY_TICKS, "policy": "untrained bring-up"}
        measurements += [
            Measurement.from_samples(f"{mode}: seam at switches", "mm", seams, mean_mm=round(float(np.mean(seams)), 3),
                                     max_mm=round(float(np.max(seams)), 3), **notes),
            Measurement.from_samples(f"{mode}: step at switches", "mm", steps_mm[switch].tolist(),
                                     mean_mm=round(float(steps_mm[switch].mean()), 3),
                                     max_mm=round(float(steps_mm[switch].max()), 3)),
            Measurement.from_samples(f"{mode}: step inside chunks", "mm", steps_mm[~switch].tolist(),
                                     mean_mm=round(float(steps_mm[~switch].mean()), 3)),
        ]
    return measurements
