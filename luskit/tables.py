"""Reading the pipeline's Parquet tables with errors that name the file, the missing columns and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_table(path: Path, columns: list[str], fix: str) -> pd.DataFrame:
    """Read a Parquet table; FileNotFoundError / ValueError name the file and `fix` when it or a column is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {fix}")
    frame = pd.read_parquet(path)
    lacking = sorted(set(columns) - set(frame.columns))
    if lacking:
        raise ValueError(f"{path}: column(s) {lacking} missing: {fix}")
    return frame
