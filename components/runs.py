"""Reading stored runs: what ultralytics wrote (results.csv, args.yaml) plus our summary.json.

Read-only: nothing here writes, renames or caches into a run directory. Missing or damaged
parts are reported in ``problems`` instead of raising, so one bad run never hides the others.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .evaluate import SUMMARY_NAME


@dataclass
class Run:
    name: str
    path: Path
    results: pd.DataFrame | None = None
    args: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Has the numbers a table row needs: a summary with metrics."""
        return bool(self.summary.get("metrics"))


def read_results_csv(path: Path) -> pd.DataFrame:
    """results.csv with headers stripped (older ultralytics padded them with spaces), numeric cells."""
    df = pd.read_csv(path, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise ValueError("results.csv has no rows")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"results.csv has non-numeric cells in {bad[:3]}")
    return df


def load_run(path: str | Path) -> Run:
    import yaml

    path = Path(path)
    run = Run(name=path.name, path=path)
    if not path.is_dir():
        run.problems.append("not a directory")
        return run
    csv = path / "results.csv"
    if csv.is_file():
        try:
            run.results = read_results_csv(csv)
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            run.problems.append(f"results.csv unreadable: {str(e).splitlines()[0]}")
    else:
        run.problems.append("no results.csv")
    if (path / "args.yaml").is_file():
        try:
            run.args = yaml.safe_load((path / "args.yaml").read_text()) or {}
        except yaml.YAMLError as e:
            run.problems.append(f"args.yaml unreadable: {str(e).splitlines()[0]}")
    summary = path / SUMMARY_NAME
    if summary.is_file():
        try:
            run.summary = json.loads(summary.read_text())
        except json.JSONDecodeError as e:
            run.problems.append(f"{SUMMARY_NAME} unreadable: {e}")
    else:
        run.problems.append(f"no {SUMMARY_NAME} (train or evaluate writes it)")
    return run


def find_runs(root: str | Path) -> list[Run]:
    """Every run directory under ``root`` (a folder holding results.csv or summary.json)."""
    root = Path(root)
    if not root.is_dir():
        return []
    dirs = sorted({p.parent for pattern in ("results.csv", SUMMARY_NAME) for p in root.rglob(pattern)})
    return [load_run(d) for d in dirs]
