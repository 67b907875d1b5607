"""PolicyStatus and /diagnostics from one report, and per-cause counting that logs each cause once.

A control loop that logs every refusal would flood the console at 50 Hz; counting per cause and
logging only the first occurrence keeps the log readable while PolicyStatus still carries how
often each cause happened.
"""
from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from vla_core.runtime.latency import LatencySummary
from vla_msgs.msg import PolicyStatus

from .sensor_inputs import InputError

T = TypeVar("T")

STATE_NAMES = {
    PolicyStatus.STATE_UNCONFIGURED: "unconfigured",
    PolicyStatus.STATE_INACTIVE: "inactive",
    PolicyStatus.STATE_WAITING: "waiting",
    PolicyStatus.STATE_READY: "ready",
    PolicyStatus.STATE_RUNNING: "running",
    PolicyStatus.STATE_HOLDING: "holding",
    PolicyStatus.STATE_STOPPED: "stopped",
    PolicyStatus.STATE_ERROR: "error",
}
_LEVELS = {
    PolicyStatus.STATE_READY: DiagnosticStatus.OK,
    PolicyStatus.STATE_RUNNING: DiagnosticStatus.OK,
    PolicyStatus.STATE_ERROR: DiagnosticStatus.ERROR,
}


class CauseLog:
    """Counts events per cause; the first of each cause is logged as a warning, later ones are not."""

    def __init__(self, logger) -> None:
        self._logger = logger
        self.counts: Counter[str] = Counter()
        self.last: dict[str, str] = {}  # cause -> its latest message (/diagnostics shows it; the log only the first)

    def attempt(self, read: Callable[[], T]) -> T | None:
        """`read()`, or None with the refusal counted (and logged if new) when it raises InputError."""
        try:
            return read()
        except InputError as error:
            self.report(error.cause, str(error))
            return None

    def guard(self, cause: str, callback: Callable[..., T]) -> Callable[..., T | None]:
        """`callback` made safe to hand to rclpy: an exception that escapes a callback ends the
        executor's spin, and with it the node (main thread) or the thread serving a service
        (side executor) while the node goes on reporting READY. Here any exception is counted
        under `cause` with its type and message (the first one's traceback is logged) and the
        callback returns None; sane input next time is served as usual."""

        def guarded(*args, **kwargs) -> T | None:
            try:
                return callback(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - the callback boundary: count, log once, keep running
                if self.counts[cause] == 0:
                    self._logger.error(traceback.format_exc())
                name = getattr(callback, "__name__", None) or getattr(getattr(callback, "func", None), "__name__",
                                                                      "callback")  # functools.partial has none
                self.report(cause, f"{name} failed: {type(error).__name__}: {error}")
                return None

        return guarded

    def report(self, cause: str, message: str) -> None:
        if self.counts[cause] == 0:
            self._logger.warning(f"{message} (further '{cause}' events are counted in the status, not logged)")
        self.counts[cause] += 1
        self.last[cause] = message

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class StatusReport:
    state: int
    detail: str
    model: str
    embodiment: str
    instruction: str = ""
    chunks: int = 0
    latency: LatencySummary = field(default_factory=lambda: LatencySummary(0.0, 0.0, 0.0, 0.0, 0.0, 0))
    rejected_inputs: int = 0
    safety_holds: int = 0
    counters: Mapping[str, int] = field(default_factory=dict)
    last_messages: Mapping[str, str] = field(default_factory=dict)  # cause -> its latest message
    # executor only: chunk request round trips and their share beyond the policy's inference time
    round_trip: LatencySummary | None = None
    network: LatencySummary | None = None


def status_message(report: StatusReport, stamp: Time, frame_id: str = "") -> PolicyStatus:
    msg = PolicyStatus(state=report.state, detail=report.detail, model=report.model, embodiment=report.embodiment,
                       instruction=report.instruction, chunks=report.chunks,
                       latency_last=report.latency.last, latency_median=report.latency.median,
                       latency_p95=report.latency.p95, latency_max=report.latency.maximum,
                       rejected_inputs=report.rejected_inputs, safety_holds=report.safety_holds,
                       counters=[KeyValue(key=k, value=str(v)) for k, v in sorted(report.counters.items())])
    if report.round_trip is not None:
        msg.round_trip_median, msg.round_trip_p95 = report.round_trip.median, report.round_trip.p95
    if report.network is not None:
        msg.network_latency_median, msg.network_latency_p95 = report.network.median, report.network.p95
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def diagnostics_message(report: StatusReport, name: str, hardware_id: str, stamp: Time) -> DiagnosticArray:
    values = [KeyValue(key="state", value=STATE_NAMES.get(report.state, str(report.state))),
              KeyValue(key="model", value=report.model), KeyValue(key="embodiment", value=report.embodiment),
              KeyValue(key="instruction", value=report.instruction), KeyValue(key="chunks", value=str(report.chunks)),
              KeyValue(key="latency_median_s", value=f"{report.latency.median:.4f}"),
              KeyValue(key="latency_p95_s", value=f"{report.latency.p95:.4f}"),
              KeyValue(key="rejected_inputs", value=str(report.rejected_inputs)),
              KeyValue(key="safety_holds", value=str(report.safety_holds))]
    for prefix, summary in (("round_trip", report.round_trip), ("network_latency", report.network)):
        if summary is not None:
            values += [KeyValue(key=f"{prefix}_median_s", value=f"{summary.median:.4f}"),
                       KeyValue(key=f"{prefix}_p95_s", value=f"{summary.p95:.4f}")]
    values += [KeyValue(key=k, value=str(v)) for k, v in sorted(report.counters.items())]
    values += [KeyValue(key=f"{k} (last)", value=v) for k, v in sorted(report.last_messages.items())]
    status = DiagnosticStatus(level=_LEVELS.get(report.state, DiagnosticStatus.WARN), name=name,
                              message=report.detail or STATE_NAMES.get(report.state, ""), hardware_id=hardware_id,
                              values=values)
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
