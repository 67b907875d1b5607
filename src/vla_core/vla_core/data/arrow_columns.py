"""Arrow arrays and tables for the LeRobot v3.0 writer, built from their buffers.

Why (issue 36): pyarrow's own constructors from Python or numpy values (`pa.array`,
`pa.Table.from_pylist`, `Array.to_numpy`) import pandas on their first call whenever pandas is
installed, to ask whether the values are pandas objects. That import costs every `vla convert`
about 0.27 CPU seconds, more than reading a 60 s bag, on a machine whose two cores are already
busy decoding and encoding. Arrays made with `pa.Array.from_buffers` skip that question, and
`pyarrow.parquet` writes them without pandas.

The arrays are exactly those pyarrow would infer from the same values (`table_from_rows` equals
`pa.Table.from_pylist` for the kinds of values the writer stores: tested), and `pandas_table`
writes the metadata `DataFrame.to_parquet` writes, so the files are the ones written before.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY_TYPES = {pa.int64(): np.int64, pa.float64(): np.float64, pa.float32(): np.float32}


def numbers(values: np.ndarray | Sequence[float], kind: pa.DataType) -> pa.Array:
    """A (N,) int64, float64 or float32 array of `values`, without nulls."""
    data = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[kind])
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def vectors(values: np.ndarray) -> pa.Array:
    """(N, D) values as a fixed-size list<float32>[D] array (one vector per frame)."""
    data = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(numbers(data.ravel(), pa.float32()), data.shape[1])


def _validity(present: np.ndarray) -> pa.Buffer | None:
    """Arrow's validity bitmap (least significant bit first), None when every value is present."""
    return None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))


def strings(texts: Sequence[str | None], kind: pa.DataType = pa.string()) -> pa.Array:
    """A string (or large_string) array; None is null."""
    encoded = [text.encode() if text is not None else b"" for text in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64 if kind == pa.large_string() else np.int32)
    np.cumsum([len(data) for data in encoded], out=offsets[1:])
    present = np.array([text is not None for text in texts], bool)
    return pa.Array.from_buffers(kind, len(encoded), [_validity(present), pa.py_buffer(offsets),
                                                      pa.py_buffer(b"".join(encoded))])


def booleans(values: Sequence[bool | None]) -> pa.Array:
    """A bool array; None is null."""
    present = np.array([value is not None for value in values], bool)
    bits = np.packbits(np.array([bool(value) for value in values], bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [_validity(present), pa.py_buffer(bits)])


def string_lists(lists: Sequence[Sequence[str]]) -> pa.Array:
    """A list<string> array (every list present)."""
    offsets = np.zeros(len(lists) + 1, np.int32)
    np.cumsum([len(items) for items in lists], out=offsets[1:])
    return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets)]),
                                    strings([item for items in lists for item in items]))


def _column(values: list[Any]) -> pa.Array:
    """The array pyarrow infers for one column of Python values (bool before int: a bool is an int)."""
    present = [value for value in values if value is not None]
    if not present:
        return pa.nulls(len(values))
    if all(isinstance(value, bool) for value in present):
        return booleans(values)
    if len(present) == len(values) and all(isinstance(value, int) for value in values):
        return numbers(values, pa.int64())
    if len(present) == len(values) and all(isinstance(value, (int, float)) for value in values):
        return numbers(values, pa.float64())
    if all(isinstance(value, str) for value in present):
        return strings(values)
    if len(present) == len(values) and all(isinstance(value, list) and all(isinstance(item, str) for item in value)
                                           for value in values):
        return string_lists(values)
    raise TypeError(f"no Arrow column for values like {present[0]!r}")


def table_from_rows(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """`pa.Table.from_pylist(rows)` for rows of ints, floats, strings, bools, lists of strings and
    None (null where missing; columns in the first row's order)."""
    names = list(rows[0])
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


def pandas_table(index_name: str, index: Sequence[str], column: str, values: Sequence[int]) -> pa.Table:
    """What `pd.DataFrame({column: values}, index=pd.Index(index, name=index_name)).to_parquet`
    writes with pandas 3 (its string index as large_string, stored after the column), with the
    pandas metadata that makes `pd.read_parquet` (LeRobot's reader) restore the index."""
    columns = [
        {"name": column, "field_name": column, "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
        {"name": index_name, "field_name": index_name, "pandas_type": "object", "numpy_type": "str",
         "metadata": None},
    ]
    metadata = {
        "index_columns": [index_name],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "str",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": columns, "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": version("pandas"),
    }
    table = pa.table({column: numbers(values, pa.int64()), index_name: strings(index, pa.large_string())})
    return table.replace_schema_metadata({"pandas": json.dumps(metadata)})
