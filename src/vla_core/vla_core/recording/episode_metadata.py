"""What an episode's metadata.yaml says about it, and the marker of an episode still being written.

The bag converter reads these `custom_data` keys (all values are strings, as rosbag2 requires):
`vla_ros.instruction`, `vla_ros.embodiment`, `vla_ros.success` ("true"/"false"),
`vla_ros.operator_notes`, `vla_ros.episode_id`, and `vla_ros.recovered` ("true") only on an
episode rebuilt after a crash.

While an episode is open its directory holds `RECORDING_MARKER`, a small JSON file with the
same facts, written durably at start and updated at stop before the bag is closed. A directory
that still has it when the recorder starts was cut by a crash and is recovered (see recovery.py).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from vla_core.recording.durable_files import atomic_write_text

INSTRUCTION = "vla_ros.instruction"
EMBODIMENT = "vla_ros.embodiment"
SUCCESS = "vla_ros.success"
OPERATOR_NOTES = "vla_ros.operator_notes"
EPISODE_ID = "vla_ros.episode_id"
RECOVERED = "vla_ros.recovered"

RECORDING_MARKER = "vla_recording.json"


class MarkerError(ValueError):
    """A recording marker that cannot be read; the message names the file."""


@dataclass(frozen=True)
class EpisodeInfo:
    episode_id: str
    instruction: str
    embodiment: str
    operator_notes: str = ""
    success: bool = False
    recovered: bool = False

    def custom_data(self) -> dict[str, str]:
        """The metadata.yaml `custom_data` entries of this episode."""
        data = {INSTRUCTION: self.instruction, EMBODIMENT: self.embodiment, SUCCESS: str(self.success).lower(),
                OPERATOR_NOTES: self.operator_notes, EPISODE_ID: self.episode_id}
        if self.recovered:
            data[RECOVERED] = "true"
        return data

    def stopped(self, success: bool, notes: str) -> EpisodeInfo:
        """This episode with the operator's verdict; stop notes are appended to the start notes."""
        joined = "\n".join(text for text in (self.operator_notes, notes.strip()) if text)
        return replace(self, success=success, operator_notes=joined)


def new_episode_id(now: datetime | None = None) -> str:
    """A sortable, unique-per-microsecond id that is also a valid directory name."""
    now = now or datetime.now(UTC)
    return "episode_" + now.strftime("%Y%m%dT%H%M%S_%fZ")


def write_marker(directory: Path, info: EpisodeInfo) -> None:
    atomic_write_text(directory / RECORDING_MARKER, json.dumps(asdict(info), indent=1))


def read_marker(directory: Path) -> EpisodeInfo:
    path = directory / RECORDING_MARKER
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return EpisodeInfo(**fields)
    except (OSError, ValueError, TypeError) as error:
        raise MarkerError(f"{path}: not a readable recording marker ({error})") from error
