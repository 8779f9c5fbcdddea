"""Report writers: mean ± std over seeds, markdown and CSV tables, JSON results.

Every file is written atomically (a temporary name renamed onto the target), so a crash or a
concurrent reader never sees half a table.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from jax231.training import atomic_path, atomic_write_text

Record = Mapping[str, Any]
"""One run's results: a flat dict of JSON-able values."""


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and *population* standard deviation (``ddof=0``) of the finite values.

    Seeds are all the runs we have, not a sample we extrapolate from; with a single
    seed the std is 0. Returns ``(nan, nan)`` when no value is finite.
    """
    array = np.asarray([v for v in values if v is not None], dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std())


def format_mean_std(values: Iterable[float], *, digits: int = 3, scale: float = 1.0) -> str:
    """``'0.912 ± 0.004'`` (``'—'`` when nothing is finite; no ``±`` for one value)."""
    values = [v * scale for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "—"
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def aggregate(
    records: Sequence[Record], *, by: Sequence[str], columns: Mapping[str, Callable[[list[Record]], Any]]
) -> list[dict[str, Any]]:
    """Groups ``records`` by the keys ``by`` and summarises each group.

    Args:
      records: one dict per run.
      by: keys identifying a group (e.g. ``('model', 'optimizer')``); groups keep the
        order of their first appearance.
      columns: ``column name -> summary(group_records)``, e.g. a mean ± std formatter.

    Returns:
      One row per group: the ``by`` values followed by the summary columns.
    """
    groups: dict[tuple, list[Record]] = {}
    for record in records:
        groups.setdefault(tuple(record[k] for k in by), []).append(record)
    rows = []
    for key, group in groups.items():
        row = dict(zip(by, key))
        row.update({name: fn(group) for name, fn in columns.items()})
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of ``rows`` (``columns`` default: the first row's keys)."""
    if columns is None:
        columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> pathlib.Path:
    """Writes ``rows`` as CSV with a header row; returns the path."""
    path = pathlib.Path(path)
    if columns is None:
        columns = list(rows[0]) if rows else []
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_tables(
    workdir: str | os.PathLike,
    stem: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    notes: str | None = None,
) -> str:
    """Writes ``<stem>.md`` and ``<stem>.csv`` under ``workdir``; returns the markdown text."""
    workdir = pathlib.Path(workdir)
    text = markdown_table(rows, columns)
    if title:
        text = f"## {title}\n\n{text}"
    if notes:
        text = f"{text}\n{notes.strip()}\n"
    atomic_write_text(workdir / f"{stem}.md", text)
    write_csv(workdir / f"{stem}.csv", rows, columns)
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None  # JSON has no NaN / inf
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> pathlib.Path:
    """Writes ``data`` as indented JSON (arrays to lists, NaN/inf to null); returns the path."""
    return atomic_write_text(path, json.dumps(_jsonable(data), indent=1, sort_keys=False) + "\n")
