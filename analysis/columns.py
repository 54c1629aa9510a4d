"""A string column of the ledger looked at for some of its rows only, whether it is held as a
categorical (as ``analysis.rundir.load_run`` reads the low-cardinality columns) or as plain strings
(a notebook's frame): one answer per category and a lookup by code, never a Python string per row
of a categorical."""

from __future__ import annotations

import numpy as np
import pandas as pd


def labels(column: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``column``'s values at ``rows`` as an object array of str (None for null)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        names = np.array([str(c) for c in column.cat.categories] + [None], dtype=object)
        return names[column.cat.codes.to_numpy()[rows]]  # code -1 (null) -> None
    values = column.iloc[rows]
    return np.array([None if pd.isna(v) else str(v) for v in values], dtype=object)


def isin(column: pd.Series, rows: np.ndarray, names: set[str]) -> np.ndarray:
    """Whether ``column``'s value at each of ``rows`` is one of ``names`` (by its text)."""
    if not names or not len(rows):
        return np.zeros(len(rows), dtype=bool)
    if isinstance(column.dtype, pd.CategoricalDtype):
        wanted = np.array([str(c) in names for c in column.cat.categories] + [False])
        return wanted[column.cat.codes.to_numpy()[rows]]
    return column.iloc[rows].astype("string").isin(names).fillna(False).to_numpy(dtype=bool)


def contains(column: pd.Series, rows: np.ndarray, text: str) -> np.ndarray:
    """Whether ``column``'s value at each of ``rows`` contains ``text`` (False for null)."""
    if not len(rows):
        return np.zeros(0, dtype=bool)
    if isinstance(column.dtype, pd.CategoricalDtype):
        wanted = np.array([text in str(c) for c in column.cat.categories] + [False])
        return wanted[column.cat.codes.to_numpy()[rows]]
    values = column.iloc[rows].astype("string").fillna("")
    return values.str.contains(text, regex=False).to_numpy(dtype=bool)
