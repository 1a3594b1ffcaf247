"""A job that exercises a lane's limits: it reports progress, then spins the CPU, sleeps or
allocates as its spec asks. The lane's tests and the soak script run it; it reads no files."""
from __future__ import annotations

import time


def main(spec: dict, report) -> None:
    steps = int(spec.get("steps", 3))
    for i in range(steps):
        report(i, steps, "self-test")
    # Phases of evenly sized steps of CPU work, as the evaluation's pass over the images and its
    # numbers model by model: [[steps, seconds a step], ...], reported from 0.
    for phase, (steps_n, step_s) in enumerate(spec.get("phases", [])):
        report(0, int(steps_n), f"paced phase {phase}", paced=True)
        for i in range(int(steps_n)):
            end = time.monotonic() + float(step_s)
            while time.monotonic() < end:
                sum(range(10_000))
            report(i + 1, int(steps_n), f"paced phase {phase}", paced=True)
    if spec.get("allocate_bytes"):
        block = bytearray(int(spec["allocate_bytes"]))  # zero-filled: touches every page
        block[-1] = 1
    end = time.monotonic() + float(spec.get("spin_s", 0))
    while time.monotonic() < end:  # CPU work, as a model's forwards would be
        sum(range(10_000))
    time.sleep(float(spec.get("sleep_s", 0)))
    if spec.get("fail"):
        from attention_lens.jobs import JobError

        raise JobError(str(spec["fail"]))
    report(steps, steps, "self-test")
