"""Data fingerprints: a content hash per table, so every MLflow run says exactly which data it saw."""

from __future__ import annotations

import hashlib

import pandas as pd


def table_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every value (row order matters)."""
    h = hashlib.sha256()
    h.update("|".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def fingerprints(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, object]]:
    """Rows and content hash of each table."""
    return {name: {"rows": len(df), "sha256": table_fingerprint(df)} for name, df in sorted(tables.items())}
