"""Reading stored runs: what ultralytics wrote (results.csv, args.yaml) plus our summary.json.

Read-only: nothing here writes, renames or caches into a run directory. Missing or damaged
parts are reported in ``problems`` instead of raising, so one bad run never hides the others.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from attention_lens.cache import BoundedCache


@dataclass
class Run:
    name: str
    path: Path
    results: pd.DataFrame | None = None
    args: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # read, with a caveat (e.g. rows capped)
    #: Whether this process may build the run's best.pt to cost it (False for uploads: a lane job does).
    may_build: bool = True
    #: The user's own run (uploaded, or from --runs), not the shipped zoo's: listed first.
    yours: bool = False

    @property
    def usable(self) -> bool:
        """Has the numbers a table row needs: a summary with metrics."""
        return not self.problems_with_summary and bool(self.summary.get("metrics"))

    @property
    def problems_with_summary(self) -> bool:
        return any(p.startswith(SUMMARY_NAME) for p in self.problems)


#: Bounds on what one run may cost to read: a run folder can come from anyone (an uploaded zip).
#: The file train and evaluate write into a run directory (experiments/evaluate.py says what it holds).
SUMMARY_NAME = "summary.json"
MAX_JSON_BYTES = 2 * 2**20
MAX_CSV_BYTES = 32 * 2**20
MAX_CSV_ROWS = 5000
MAX_DIGITS = 30


def read_json_dict(path: Path) -> dict:
    """A JSON object from a file, refusing oversized files, non-UTF-8 text, huge numbers and deep nesting."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 2**20} MB")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise ValueError("nests too deeply") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON (line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    return data


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"holds a {len(text)}-digit number")
    return int(text)


def check_summary(summary: dict) -> None:
    """The fields the Metrics tab reads must have the types it expects; ValueError names the first that does not."""
    for key in ("variant", "metrics", "gflops", "latency_cpu", "dataset"):
        if key in summary and not isinstance(summary[key], dict):
            raise ValueError(f"'{key}' is a {type(summary[key]).__name__}, not an object")
    for key in ("params", "seed"):
        if key in summary and summary[key] is not None and not isinstance(summary[key], (int, float)):
            raise ValueError(f"'{key}' is not a number")
    for split, values in (summary.get("metrics") or {}).items():
        if not isinstance(values, dict):
            raise ValueError(f"metrics.{str(split)[:20]} is not an object")
        per_class = values.get("per_class")
        if per_class is not None and not (isinstance(per_class, dict) and all(isinstance(v, dict)
                                                                              for v in per_class.values())):
            raise ValueError(f"metrics.{str(split)[:20]}.per_class is not an object of objects")
    for k in ("base", "attention", "placement"):
        v = (summary.get("variant") or {}).get(k)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"variant.{k} is not a text")


def read_results_csv(path: Path) -> pd.DataFrame:
    """results.csv with headers stripped (older ultralytics padded them with spaces), numeric cells.

    At most MAX_CSV_ROWS rows are read (a note says when there were more)."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ValueError(f"results.csv is larger than {MAX_CSV_BYTES // 2**20} MB")
    df = pd.read_csv(path, skipinitialspace=True, nrows=MAX_CSV_ROWS + 1)
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise ValueError("results.csv has no rows")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"results.csv has non-numeric cells in {bad[:3]}")
    return df


def load_run(path: str | Path) -> Run:
    from attention_lens.data.yaml_files import MAX_YAML_BYTES, YamlError, load_plain_yaml

    path = Path(path)
    run = Run(name=path.name, path=path)
    if not path.is_dir():
        run.problems.append("not a directory")
        return run
    csv = path / "results.csv"
    if csv.is_file():
        try:
            run.results = read_results_csv(csv)
            if len(run.results) > MAX_CSV_ROWS:
                run.results = run.results.iloc[:MAX_CSV_ROWS]
                run.notes.append(f"results.csv has more than {MAX_CSV_ROWS} rows; the first {MAX_CSV_ROWS} are used")
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            run.problems.append(f"results.csv unreadable: {(str(e).splitlines() or [type(e).__name__])[0][:200]}")
    else:
        run.problems.append("no results.csv")
    args = path / "args.yaml"
    if args.is_file():
        try:
            if args.stat().st_size > MAX_YAML_BYTES:
                raise YamlError(f"is larger than {MAX_YAML_BYTES // 2**10} KB")
            loaded = load_plain_yaml(args.read_bytes()) or {}
            run.args = loaded if isinstance(loaded, dict) else {}
        except YamlError as e:
            run.problems.append(f"args.yaml {e}")
    summary = path / SUMMARY_NAME
    if summary.is_file():
        try:
            run.summary = read_json_dict(summary)
            check_summary(run.summary)
        except ValueError as e:
            run.summary = {}
            run.problems.append(f"{SUMMARY_NAME} unreadable: {e}")
    else:
        run.problems.append(f"no {SUMMARY_NAME} (train or evaluate writes it)")
    return run


#: results.csv columns of ultralytics' detection trainer -> this table's metric names.
RESULTS_COLUMNS = {"P": "metrics/precision(B)", "R": "metrics/recall(B)", "mAP50": "metrics/mAP50(B)",
                   "mAP50-95": "metrics/mAP50-95(B)"}
#: A plain run's best.pt is rebuilt (in the checkpoint reader's sandbox) for params and GFLOPs
#: only when it is at most this large; bigger files keep those columns empty.
MAX_COSTED_CHECKPOINT = 64 * 2**20
#: Checkpoint costs by file version and image size.
_COSTS: BoundedCache[dict] = BoundedCache(256)


def plain_metrics(run: Run) -> dict:
    """What a plain ultralytics run (no summary.json) shows: the validation metrics of its best
    epoch (ultralytics' fitness, 0.1 mAP50 + 0.9 mAP50-95, as best.pt is chosen), and params and
    GFLOPs of its weights/best.pt. Empty when results.csv lacks the metric columns."""
    df = run.results
    if run.usable or df is None or not all(c in df.columns for c in RESULTS_COLUMNS.values()):
        return {}
    best = df.iloc[int((0.1 * df[RESULTS_COLUMNS["mAP50"]] + 0.9 * df[RESULTS_COLUMNS["mAP50-95"]]).fillna(-1).argmax())]
    out = {name: float(best[col]) for name, col in RESULTS_COLUMNS.items()}
    out.update(_checkpoint_costs(run.path / "weights" / "best.pt", run.args.get("imgsz"), run.may_build))
    return out


def _cost_key(path: Path, imgsz) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    imgsz = int(imgsz) if isinstance(imgsz, int) and 32 <= imgsz <= 1280 else 640
    return str(path), st.st_size, st.st_mtime_ns, imgsz


def _checkpoint_costs(path: Path, imgsz, build: bool = True) -> dict:
    """params and GFLOPs of a checkpoint, computed once per file version; {} if it cannot be read.

    The app computes those of uploaded runs in a lane job (``pending_costs``, ``remember_costs``)
    and marks the runs ``may_build=False``; the rest (the server's own runs) are computed here."""
    key = _cost_key(path, imgsz)
    if key is None:
        return {}
    hit = _COSTS.get(key)
    if hit is not None or not build:
        return hit or {}
    return _COSTS.put(key, checkpoint_costs(path, key[3]) if key[1] <= MAX_COSTED_CHECKPOINT else {})


def checkpoint_costs(path: Path, imgsz: int) -> dict:
    """Build the checkpoint (the loader's sandbox and size checks) and count its params and GFLOPs."""
    from attention_lens.experiments.flops import gflops
    from attention_lens.modeling.checkpoints import CheckpointError
    from attention_lens.modeling.load import load_model

    try:
        model = load_model(path)
        g = gflops(model, imgsz)
    except (CheckpointError, ValueError, RuntimeError, OSError):
        return {}
    return {"params": float(sum(p.numel() for p in model.parameters())), "GFLOPs (thop)": g["thop"],
            "GFLOPs (torch)": g["torch"]}


def pending_costs(runs: list[Run]) -> list[dict]:
    """The checkpoints of plain runs whose costs are not known yet: [{"path", "imgsz"}]."""
    out = []
    for run in runs:
        if run.usable or run.results is None:
            continue
        key = _cost_key(run.path / "weights" / "best.pt", run.args.get("imgsz"))
        if key is not None and key not in _COSTS and key[1] <= MAX_COSTED_CHECKPOINT:
            out.append({"path": key[0], "imgsz": key[3]})
    return out


def remember_costs(path: str | Path, imgsz: int, costs: dict) -> None:
    """Costs computed elsewhere (a lane job) for ``path`` at ``imgsz``; {} marks it as not costable."""
    key = _cost_key(Path(path), imgsz)
    if key is not None:
        _COSTS.put(key, {k: float(v) for k, v in costs.items()
                         if k in ("params", "GFLOPs (thop)", "GFLOPs (torch)") and isinstance(v, (int, float))})


def find_runs(root: str | Path) -> list[Run]:
    """Every run directory under ``root`` (a folder holding results.csv or summary.json)."""
    root = Path(root)
    if not root.is_dir():
        return []
    dirs = sorted({p.parent for pattern in ("results.csv", SUMMARY_NAME) for p in root.rglob(pattern)})
    return [load_run(d) for d in dirs]
