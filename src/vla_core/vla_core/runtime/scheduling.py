"""When to ask for the next action chunk and which row to execute at every control tick.

The executor node owns a fixed-rate control clock; this module decides, tick by tick, which
absolute target to command and when to request a new chunk. It works in integer control ticks
and absolute targets (chunks already decoded with their chunk-start pose), so it is exact and
testable without ROS.

Timing convention: a chunk predicted for a request made at tick r has row j meant for tick
r + 1 + j (the action at tick r itself was already committed).

Modes:
- SYNC: play the first `execute_steps` rows, request, hold the last target until the answer,
  then play the new chunk from its first row (the robot waited, so nothing is skipped).
- ASYNC (Xiaomi-Robotics-0): after `execute_steps` rows, request the next chunk while the
  current one keeps playing. The request carries the rows that will run meanwhile (the
  committed prefix, at least as long as the measured latency); the policy conditions on them
  and the new chunk's first rows reproduce them. When the chunk arrives at tick t, execution
  switches to its row t - (r + 1): the rows before it were executed from the old chunk, so
  no step is skipped or repeated, whatever the latency. When the measured latency would
  outlast the rows left after `execute_steps` (a slower computer, a loaded CPU), the request
  goes out earlier, `latency + latency_margin` rows before the chunk's end, so the arm keeps
  moving instead of waiting for the answer.
- ENSEMBLE (ACT's temporal ensembling): request every `ensemble_interval` ticks; the target at a
  tick is the average of every chunk's row for that tick, weighted exp(-decay * age) with the
  oldest chunk weighted most, as in ACT. A row its chunk could not reach (NaN, see
  `vla_core.runtime.decoding`) is left out of the average rather than spoiling it: with a
  chunk requested every tick or two, eight or more rows cover each tick, and one unreachable
  row among them would otherwise hold the robot. Only a tick no chunk reaches holds.
"""
from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np


class ExecutionMode(str, enum.Enum):
    SYNC = "sync"
    ASYNC = "async"
    ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class ChunkRequest:
    """What the executor asks the policy for at tick `tick`."""

    request_id: int
    tick: int
    source_chunk_id: int  # chunk the committed prefix comes from; 0 = no prefix
    source_start_step: int  # row of that chunk where the prefix starts
    committed_rows: np.ndarray  # (d, D) absolute targets of the prefix, empty (0, D) without one

    @property
    def has_prefix(self) -> bool:
        return bool(self.source_chunk_id) and len(self.committed_rows) > 0

    def committed_actions(self, source_actions: np.ndarray) -> np.ndarray:
        """The prefix in the policy's terms: the source chunk's action rows (`source_actions`, as the
        policy predicted them) that `committed_rows` were decoded from."""
        return source_actions[self.source_start_step: self.source_start_step + len(self.committed_rows)]


@dataclass(frozen=True)
class TickDecision:
    """The outcome of one control tick: a target to command (None = hold) and maybe a request."""

    target: np.ndarray | None
    chunk_id: int  # chunk the target came from (0 = none / ensemble of several)
    row: int  # row of that chunk (-1 when none)
    request: ChunkRequest | None


@dataclass
class _ActiveChunk:
    chunk_id: int
    targets: np.ndarray  # (H, D)
    first_tick: int  # tick of row 0

    def row_at(self, tick: int) -> int:
        return tick - self.first_tick

    def covers(self, tick: int) -> bool:
        return 0 <= self.row_at(tick) < len(self.targets)


@dataclass(frozen=True)
class SchedulerConfig:
    mode: ExecutionMode = ExecutionMode.ASYNC
    horizon: int = 16
    execute_steps: int = 8  # Te: rows executed before the next request (sync; async asks earlier when slow)
    min_prefix: int = 1  # smallest committed prefix (async)
    latency_margin: int = 1  # extra committed rows beyond the measured latency (async)
    ensemble_interval: int = 1  # ticks between requests (ensemble)
    ensemble_decay: float = 0.01  # ACT's m in exp(-m * i)
    latency_window: int = 20  # recent latencies used to size the prefix

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if not 1 <= self.execute_steps <= self.horizon:
            raise ValueError(f"execute_steps must be in 1..horizon={self.horizon}, got {self.execute_steps}")
        if self.mode is ExecutionMode.ASYNC and self.execute_steps + self.min_prefix > self.horizon:
            raise ValueError(
                f"async needs execute_steps + min_prefix <= horizon, got {self.execute_steps} + "
                f"{self.min_prefix} > {self.horizon}: no rows would be left to commit"
            )
        if self.ensemble_interval < 1:
            raise ValueError(f"ensemble_interval must be >= 1, got {self.ensemble_interval}")
        if self.ensemble_decay < 0:
            raise ValueError(f"ensemble_decay must be >= 0, got {self.ensemble_decay}")


class ChunkScheduler:
    """Tick-by-tick chunk playback for one executor. Not thread-safe: the node serialises calls."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self._active: _ActiveChunk | None = None
        self._ensemble: deque[_ActiveChunk] = deque()
        self._pending: ChunkRequest | None = None
        self._next_request_id = 1
        self._latencies: deque[int] = deque(maxlen=config.latency_window)
        self._last_request_tick: int | None = None
        self._arrived: tuple[ChunkRequest, int, np.ndarray] | None = None

    # --- inputs -------------------------------------------------------------------------
    def on_chunk(self, request_id: int, chunk_id: int, targets: np.ndarray, arrival_tick: int) -> None:
        """The policy answered request `request_id` with absolute `targets` (H, D)."""
        if self._pending is None or request_id != self._pending.request_id:
            raise ValueError(
                f"chunk {chunk_id} answers request {request_id}, but the outstanding request is "
                f"{self._pending.request_id if self._pending else 'none'}"
            )
        targets = np.asarray(targets, dtype=np.float64)
        if targets.ndim != 2 or len(targets) == 0:
            raise ValueError(f"chunk {chunk_id} targets must be (H, D) with H >= 1, got shape {targets.shape}")
        request = self._pending
        self._pending = None
        self._latencies.append(max(0, arrival_tick - request.tick))
        self._arrived = (request, chunk_id, targets)

    def cancel_pending(self) -> None:
        """Forget the outstanding request (its answer failed or timed out); the next tick asks again."""
        self._pending = None

    def reset(self) -> None:
        """Drop every chunk (after a stop): execution resumes only with a fresh chunk."""
        self._active = None
        self._ensemble.clear()
        self._pending = None
        self._arrived = None

    # --- the control tick ---------------------------------------------------------------
    def tick(self, tick: int) -> TickDecision:
        self._take_arrived(tick)
        if self.config.mode is ExecutionMode.ENSEMBLE:
            return self._tick_ensemble(tick)
        active = self._active
        target, chunk_id, row = None, 0, -1
        if active is not None and active.covers(tick):
            row = active.row_at(tick)
            if self.config.mode is ExecutionMode.ASYNC or row < self.config.execute_steps:
                target, chunk_id = active.targets[row], active.chunk_id
            else:
                row = -1
        request = self._maybe_request(tick)
        return TickDecision(target, chunk_id, row, request)

    def upcoming(self, tick: int) -> np.ndarray:
        """Rows of the active chunk meant for the ticks after `tick` (empty in ensemble mode,
        and in sync mode beyond the rows it will execute): look-ahead for command interfaces."""
        active = self._active
        if self.config.mode is ExecutionMode.ENSEMBLE or active is None or not active.covers(tick):
            return np.zeros((0, 0))
        end = len(active.targets) if self.config.mode is ExecutionMode.ASYNC else self.config.execute_steps
        return active.targets[active.row_at(tick) + 1 : end].copy()

    @property
    def pending(self) -> ChunkRequest | None:
        return self._pending

    @property
    def latency_ticks(self) -> int:
        """A high estimate of the policy's latency in ticks (max of the recent window)."""
        return max(self._latencies, default=0)

    # --- internals ----------------------------------------------------------------------
    def _take_arrived(self, tick: int) -> None:
        if self._arrived is None:
            return
        request, chunk_id, targets = self._arrived
        self._arrived = None
        if self.config.mode is ExecutionMode.SYNC:
            first_tick = tick  # the robot held while waiting: start from row 0 now
        else:
            first_tick = request.tick + 1
        chunk = _ActiveChunk(chunk_id, targets, first_tick)
        if self.config.mode is ExecutionMode.ENSEMBLE:
            self._ensemble.append(chunk)
        else:
            self._active = chunk

    def _rows_executed(self, tick: int) -> int:
        return 0 if self._active is None else self._active.row_at(tick) + 1

    def _maybe_request(self, tick: int) -> ChunkRequest | None:
        if self._pending is not None:
            return None
        active = self._active
        if active is not None and self._rows_executed(tick) < self._rows_before_request():
            return None
        if self.config.mode is ExecutionMode.ASYNC and active is not None and active.covers(tick + 1):
            start = active.row_at(tick + 1)
            wanted = max(self.config.min_prefix, self._rows_run_while_waiting)
            committed = active.targets[start : start + wanted]
            return self._issue(tick, active.chunk_id, start, committed)
        width = 0 if active is None else active.targets.shape[1]
        return self._issue(tick, 0, 0, np.zeros((0, width)))

    @property
    def _rows_run_while_waiting(self) -> int:
        """Rows the old chunk must still supply after an async request: the measured latency
        plus the margin (the committed prefix, and the room a request needs before the end)."""
        return self.latency_ticks + self.config.latency_margin

    def _rows_before_request(self) -> int:
        """Rows of the active chunk to play before asking for the next one. Async asks early
        enough that the answer, `latency_ticks` away, comes before the chunk runs out."""
        if self.config.mode is not ExecutionMode.ASYNC:
            return self.config.execute_steps
        return max(1, min(self.config.execute_steps, self.config.horizon - self._rows_run_while_waiting))

    def _issue(self, tick: int, source_chunk_id: int, start: int, committed: np.ndarray) -> ChunkRequest:
        request = ChunkRequest(self._next_request_id, tick, source_chunk_id, start, committed.copy())
        self._next_request_id += 1
        self._pending = request
        self._last_request_tick = tick
        return request

    def _tick_ensemble(self, tick: int) -> TickDecision:
        while self._ensemble and not (self._ensemble[0].covers(tick) or self._ensemble[0].first_tick > tick):
            self._ensemble.popleft()
        covering = [chunk for chunk in self._ensemble if chunk.covers(tick)]
        target = None
        if covering:
            # ACT: w_i = exp(-m * i), i = 0 for the oldest prediction
            weights = np.array([math.exp(-self.config.ensemble_decay * i) for i in range(len(covering))])
            rows = np.stack([chunk.targets[chunk.row_at(tick)] for chunk in covering])
            reachable = np.all(np.isfinite(rows), axis=1)
            target = ((weights[reachable, None] * rows[reachable]).sum(axis=0) / weights[reachable].sum()
                      if reachable.any() else rows[0])  # no reachable row: NaN, which the safety filter holds
        request = None
        due = self._last_request_tick is None or tick - self._last_request_tick >= self.config.ensemble_interval
        if self._pending is None and due:
            width = covering[0].targets.shape[1] if covering else 0
            request = self._issue(tick, 0, 0, np.zeros((0, width)))
        chunk_id = covering[-1].chunk_id if len(covering) == 1 else 0
        return TickDecision(target, chunk_id, -1, request)
