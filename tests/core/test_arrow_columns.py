"""The writer's Arrow tables, built from buffers without pandas (`vla_core.data.arrow_columns`), are
the ones pyarrow and pandas build from the same values, so the dataset files stay the same; and a
conversion's writer never imports pandas (it cost every `vla convert` about 0.27 CPU seconds)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from vla_core.data.arrow_columns import numbers, pandas_table, table_from_rows, vectors

ROWS = [
    {"episode_index": 0, "tasks": ["pick up the red cube"], "length": 3, "videos/front/from_timestamp": 0.0,
     "name": "épisode 1", "success": None, "metadata": "{}"},
    {"episode_index": 1, "tasks": ["stack", "then wave"], "length": 40, "videos/front/from_timestamp": 0.1,
     "name": "b", "success": True, "metadata": '{"bag": "x"}'},
    {"episode_index": 2, "tasks": [], "length": 1, "videos/front/from_timestamp": 4.4,
     "name": "", "success": False, "metadata": ""},
]


@pytest.mark.parametrize("rows", [ROWS, [dict(row, success=None) for row in ROWS], ROWS[:1]])
def test_rows_make_the_table_from_pylist_makes(rows: list[dict]) -> None:
    ours, theirs = table_from_rows(rows), pa.Table.from_pylist(rows)
    assert ours.schema == theirs.schema
    assert ours.equals(theirs)


def test_numbers_and_vectors_are_pa_array_s() -> None:
    values = np.random.default_rng(0).normal(size=(7, 6))
    assert vectors(values).equals(pa.FixedSizeListArray.from_arrays(
        pa.array(values.astype(np.float32).ravel(), pa.float32()), 6))
    assert numbers(np.arange(7) / 30.0, pa.float32()).equals(pa.array(np.arange(7) / 30.0, pa.float32()))
    assert numbers(np.arange(7), pa.int64()).equals(pa.array(np.arange(7), pa.int64()))


def test_the_tasks_file_is_the_one_pandas_writes(tmp_path: Path) -> None:
    tasks = {"pick up the red cube": 0, "stack the blocks": 1, "ünïcode": 2}
    pq.write_table(pandas_table("task", list(tasks), "task_index", list(tasks.values())), tmp_path / "ours.parquet")
    pd.DataFrame({"task_index": list(tasks.values())},
                 index=pd.Index(list(tasks), name="task")).to_parquet(tmp_path / "pandas.parquet")
    assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "pandas.parquet").read_bytes()
    read = pd.read_parquet(tmp_path / "ours.parquet")
    assert list(read.index) == list(tasks) and read.index.name == "task"


def test_writing_a_dataset_does_not_import_pandas(tmp_path: Path) -> None:
    script = f"""
import sys
import numpy as np
from vla_core.data.episode import Episode
from vla_core.data.lerobot_v3 import DatasetWriter
from vla_core.embodiment import load_embodiment
spec = load_embodiment("so101")
count = 4
images = {{camera.name: np.zeros((count, camera.height, camera.width, 3), np.uint8) for camera in spec.cameras}}
episode = Episode(name="e", embodiment=spec.name, task="pick", fps=30.0, timestamps=np.arange(count) / 30.0,
                  state=np.zeros((count, spec.state_dim)), action=np.zeros((count, spec.state_dim)), images=images)
with DatasetWriter({str(tmp_path / "dataset")!r}, spec, 30.0) as writer:
    writer.add(episode)
assert "pandas" not in sys.modules, "the writer imported pandas"
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
