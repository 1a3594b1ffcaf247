"""Train the shipped zoo: every run under one protocol, in the order issue 18 asks for.

    python weights/train_zoo.py [--work DIR] [--device auto|cpu|0] [--parallel N] [--deadline S] [--only NAME ...]

Each run is ``python -m attention_lens train --data DATA --epochs 60 --imgsz 320 --batch 16
--base B [--attention X --placement P [--param K=V]] --seed S --name NAME``. Runs already shipped
(``weights/NAME``) or with a ``summary.json`` are skipped, so the script resumes. With ``--parallel N`` it keeps N runs
going at once (on a GPU machine the CPUs feeding the loaders are the limit, not the GPU); with
``--deadline`` it stops starting runs and ends unfinished ones after that many seconds, so a
partial zoo still comes back in the listed order.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT.parent / "shared" / "datasets" / "bccd" / "BCCD"
PROTOCOL = ["--imgsz", "320", "--batch", "16"]
SHORT = {"neck_outputs": "neck", "backbone_outputs": "bbout", "before_sppf": "sppf", "in_csp": "incsp"}


def run(base: str, attention: str | None = None, placement: str | None = None, seed: int = 0,
        **params) -> tuple[str, list[str]]:
    """(run name, CLI arguments) of one zoo run."""
    model = base + ("u" if base.startswith("yolov5") else "")  # ultralytics' name for the v5u layout
    tag = "baseline" if attention is None else f"{attention.lower()}-{SHORT[placement]}"
    if params.get("position"):
        tag += "-" + params["position"]
    name = f"{model}-{tag}-s{seed}"
    args = ["--base", base, "--seed", str(seed), "--name", name]
    if attention:
        args += ["--attention", attention, "--placement", placement]
        args += [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    return name, args


NECK = ("EMA", "CoordAtt", "PolarizedSA", "SE", "CBAM", "ECA")
#: Every zoo run, in training order: a partial zoo is still useful from the top.
JOBS = [
    # The first zoo (CPU): the baseline at three seeds, each module after the neck.
    run("yolov8n", seed=0), *(run("yolov8n", a, "neck_outputs", 0) for a in NECK),
    run("yolov8n", seed=1), run("yolov8n", seed=2),
    run("yolov8n", "EMA", "neck_outputs", 1), run("yolov8n", "CBAM", "neck_outputs", 1),
    # Issue 18, in its order. 1: third seeds for the two largest deltas, and two baseline seeds
    # trained the same way, so runs from a GPU machine are judged against baselines from one.
    run("yolov8n", "EMA", "neck_outputs", 2), run("yolov8n", "CBAM", "neck_outputs", 2),
    run("yolov8n", seed=3), run("yolov8n", seed=4),
    # 2: the yolov5 tutorials' settings on the anchor-free v5u layout.
    run("yolov5n", seed=0), run("yolov5n", "EMA", "neck_outputs", 0),
    run("yolov5n", "EMA", "in_csp", 0, position="main"), run("yolov5n", "SE", "before_sppf", 0),
    run("yolov5n", "PolarizedSA", "neck_outputs", 0),
    # 3: yolo11.
    run("yolo11n", seed=0), run("yolo11n", "EMA", "neck_outputs", 0),
    # 4: the YOLOX habit, on the three backbone outputs.
    *(run("yolov8n", a, "backbone_outputs", 0) for a in ("CoordAtt", "SE", "ECA", "CBAM")),
    # 5: two more seeds for the remaining neck variants and for the new baselines.
    *(run("yolov8n", a, "neck_outputs", s) for a in ("CoordAtt", "PolarizedSA", "SE", "ECA") for s in (1, 2)),
    *(run(b, seed=s) for b in ("yolov5n", "yolo11n") for s in (1, 2)),
    # Issue 33: the bases that carry their own attention (YOLO26: C2PSA + the last C3k2's PSA blocks,
    # one-to-one head; YOLO12: area attention), and a plug-in module on yolo26n; one seed of each
    # first, so a partial zoo holds every kind.
    run("yolo26n", seed=0), run("yolo26n", "EMA", "neck_outputs", 0), run("yolo12n", seed=0),
    *(run(b, seed=s) for s in (1, 2) for b in ("yolo26n", "yolo12n")),
    *(run("yolo26n", "EMA", "neck_outputs", s) for s in (1, 2)),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/attention-lens-zoo", help="runs land in WORK/runs")
    p.add_argument("--device", default="auto", help="auto (a GPU where torch sees one, else the CPU), cpu (the "
                                                    "first zoo's protocol) or a CUDA index")
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--workers", type=int, default=2, help="data loader workers per run")
    p.add_argument("--deadline", type=float, default=None, help="seconds; unfinished runs are ended")
    p.add_argument("--epochs", default="60", help="the protocol's 60; fewer only to check the script")
    p.add_argument("--latency-runs", default="30", help="CPU latency runs in each summary (recost re-times)")
    p.add_argument("--fail-fast", action="store_true", help="on the first failed run, end the others and stop")
    p.add_argument("--only", nargs="*", help="run names to train (default: every run)")
    a = p.parse_args(argv)

    work = Path(a.work)
    data = work / "bccd-yolo" / "data.yaml"
    if not data.is_file():
        subprocess.run([sys.executable, "-m", "attention_lens", "voc2yolo", str(BCCD), str(data.parent)],
                       cwd=ROOT, check=True)
    todo = [(n, args) for n, args in JOBS if (a.only is None or n in a.only)
            and not (work / "runs" / n / "summary.json").is_file() and not (ROOT / "weights" / n).is_dir()]
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 2) // max(1, a.parallel))))
    t0, running, done, failed = time.time(), {}, [], []
    (work / "logs").mkdir(parents=True, exist_ok=True)
    while todo or running:
        late = a.deadline is not None and time.time() - t0 > a.deadline
        while todo and len(running) < a.parallel and not late:
            name, args = todo.pop(0)
            # An unfinished run of an earlier session starts again from scratch, under its own name
            # (left in place, ultralytics would write this one to NAME-2 and the check below would fail it).
            shutil.rmtree(work / "runs" / name, ignore_errors=True)
            cmd = [sys.executable, "-m", "attention_lens", "train", "--data", str(data), "--epochs", a.epochs, *PROTOCOL, *args,
                   "--project", str(work / "runs"), "--device", a.device, "--workers", str(a.workers),
                   "--latency-runs", a.latency_runs]
            log = open(work / "logs" / f"{name}.log", "w")
            running[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True), log)
            print(f"{time.time() - t0:6.0f}s start {name}", flush=True)
        if late:
            todo.clear()
            for name, (proc, _) in running.items():
                os.killpg(proc.pid, signal.SIGKILL)  # the run and its loader workers
                print(f"{time.time() - t0:6.0f}s ended unfinished {name}", flush=True)
        for name, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                del running[name]
                ok = proc.returncode == 0 and (work / "runs" / name / "summary.json").is_file()
                (done if ok else failed).append(name)
                print(f"{time.time() - t0:6.0f}s {'done' if ok else 'FAILED'} {name}", flush=True)
                if not ok and a.fail_fast:
                    print((work / "logs" / f"{name}.log").read_text()[-3000:], flush=True)
                    a.deadline = 0  # ends the rest on the next pass
        time.sleep(1)  # polling child processes, not synchronising tests
    print(f"done {len(done)}: {' '.join(done)}\nfailed or ended {len(failed)}: {' '.join(failed)}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
