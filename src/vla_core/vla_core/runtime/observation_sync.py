"""Assemble observations from independently stamped sensor streams on a fixed-rate timeline.

Each camera and the joint states arrive on their own topics at their own rates. The policy node
keeps the recent samples of every stream and, at each tick of its observation timeline, takes
for each stream the sample whose stamp is nearest the tick (as Xiaomi-Robotics-0 aligns its
30 Hz streams). A stream with no sample, or whose nearest sample is further than the staleness
limit from the tick, makes no observation: the result names the stream and why.

A policy that reads the joints' velocity also needs, of the joint stream, the sample one control
period before the one chosen (`assemble`'s `earlier`): the velocity is the change between the
two, as training measured it between consecutive recorded frames.

The policy node assembles at the capture stamp of the newest frame of its main camera
(`assemble_at_newest`), as `vla convert` aligned the training data by header stamp: the joints
and the other cameras nearest that instant. Assembling at the node's `now` instead would pair
fresh joints with an image one camera latency older, an observation training never saw.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StampedSample:
    stamp: float  # seconds, the message's header stamp
    data: Any


@dataclass
class AssembledObservation:
    """Either all streams' samples nearest to `stamp`, or the reasons there are none."""

    stamp: float
    samples: dict[str, StampedSample] = field(default_factory=dict)
    earlier: dict[str, StampedSample] = field(default_factory=dict)  # per stream asked for: one interval before
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems


class StreamBuffer:
    """Recent samples of one stream, ordered by stamp; older than `history` seconds are dropped."""

    def __init__(self, name: str, history: float) -> None:
        self.name = name
        self.history = history
        self._stamps: deque[float] = deque()
        self._samples: deque[StampedSample] = deque()

    def add(self, stamp: float, data: Any) -> None:
        sample = StampedSample(stamp, data)
        if self._stamps and stamp < self._stamps[-1]:
            # out of order (several publishers, or a bag replay): insert in place
            index = bisect.bisect(list(self._stamps), stamp)
            self._stamps.insert(index, stamp)
            self._samples.insert(index, sample)
        else:
            self._stamps.append(stamp)
            self._samples.append(sample)
        newest = self._stamps[-1]
        while self._stamps and self._stamps[0] < newest - self.history:
            self._stamps.popleft()
            self._samples.popleft()

    def nearest(self, stamp: float, before: float = math.inf) -> StampedSample | None:
        """The sample whose stamp is nearest `stamp`, among those stamped earlier than `before`."""
        stamps = list(self._stamps)
        count = bisect.bisect_left(stamps, before)
        if not count:
            return None
        index = bisect.bisect_left(stamps, stamp, hi=count)
        candidates = [i for i in (index - 1, index) if 0 <= i < count]
        best = min(candidates, key=lambda i: abs(stamps[i] - stamp))
        return self._samples[best]

    @property
    def newest(self) -> StampedSample | None:
        return self._samples[-1] if self._samples else None


class ObservationAssembler:
    """Nearest-stamp assembly over named streams with a staleness limit."""

    def __init__(self, streams: Iterable[str], staleness_limit: float, history: float = 2.0) -> None:
        if staleness_limit <= 0:
            raise ValueError(f"staleness_limit must be > 0 seconds, got {staleness_limit}")
        self.staleness_limit = staleness_limit
        self.buffers = {name: StreamBuffer(name, max(history, 2 * staleness_limit)) for name in streams}
        if not self.buffers:
            raise ValueError("an observation needs at least one stream")

    def add(self, stream: str, stamp: float, data: Any) -> None:
        try:
            buffer = self.buffers[stream]
        except KeyError:
            raise KeyError(f"unknown stream {stream!r}; streams are {sorted(self.buffers)}") from None
        buffer.add(stamp, data)

    def latest_common_stamp(self) -> float | None:
        """The newest stamp every stream has reached (None until each has a sample)."""
        newest = [buffer.newest for buffer in self.buffers.values()]
        if any(sample is None for sample in newest):
            return None
        return min(sample.stamp for sample in newest)

    def assemble(self, stamp: float, earlier: Mapping[str, float] | None = None) -> AssembledObservation:
        """Each stream's sample nearest `stamp`; for each stream in `earlier`, also its sample
        nearest that many seconds before the chosen one (and older than it)."""
        result = AssembledObservation(stamp)
        for name, buffer in self.buffers.items():
            sample = buffer.nearest(stamp)
            if sample is None:
                result.problems.append(f"{name}: no message received yet")
                continue
            skew = abs(sample.stamp - stamp)
            if skew > self.staleness_limit:
                result.problems.append(
                    f"{name}: nearest message is {skew:.3f} s from the observation time "
                    f"(limit {self.staleness_limit:.3f} s)"
                )
                continue
            result.samples[name] = sample
        for name, interval in (earlier or {}).items():
            if name in result.samples:
                self._add_earlier(result, name, interval)
        return result

    def assemble_at_newest(self, reference: str, now: float,
                           earlier: Mapping[str, float] | None = None) -> AssembledObservation:
        """`assemble` at the stamp of `reference`'s newest sample (a camera's capture time), which
        itself must be within the staleness limit of `now`."""
        newest = self.buffers[reference].newest
        if newest is None:
            return AssembledObservation(now, problems=[f"{reference}: no message received yet"])
        if now - newest.stamp > self.staleness_limit:
            return AssembledObservation(now, problems=[
                f"{reference}: newest message is {now - newest.stamp:.3f} s old (limit {self.staleness_limit:.3f} s)"])
        return self.assemble(newest.stamp, earlier)

    def _add_earlier(self, result: AssembledObservation, name: str, interval: float) -> None:
        chosen = result.samples[name]
        wanted = chosen.stamp - interval
        sample = self.buffers[name].nearest(wanted, before=chosen.stamp)
        if sample is None or abs(sample.stamp - wanted) > self.staleness_limit:
            found = "none" if sample is None else f"the nearest is {chosen.stamp - sample.stamp:.3f} s before it"
            result.problems.append(f"{name}: no message about {interval:.3f} s before the chosen one, which the "
                                   f"velocity is measured from ({found}; limit {self.staleness_limit:.3f} s)")
            return
        result.earlier[name] = sample
