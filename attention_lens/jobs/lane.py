"""A bounded lane for long work: child processes with limits, a FIFO queue, positions, cancel.

Why processes: work that scales with a data set, run in the server process, held a gradio slot
and the torch thread for minutes, and a cancel left its thread running (issue 31). A child
process is limited by the kernel (``RLIMIT_DATA`` for memory, ``RLIMIT_CPU``), by a wall-clock
watchdog here (running time only), runs at a lower CPU priority (``nice``) with one torch thread, so the interactive
views keep most of the CPUs, and ending it (cancel, session end, a limit) frees everything it
held. A job's process group is killed, so nothing it started outlives it.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from attention_lens.jobs.child import JOB_MODULES

ROOT = Path(__file__).resolve().parents[2]
_log = logging.getLogger("attention_lens.jobs")


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 6 * 2**30  # RLIMIT_DATA: the heap and private mappings, where tensors live
    cpu_seconds: int = 1800  # RLIMIT_CPU: the process is killed past it
    wall_seconds: float = 1200.0  # ended by the lane past it
    nice: int = 19  # the lowest priority: the interactive views take the CPUs whenever they want them
    threads: int = 1  # torch / OpenMP threads: leave the other core to the interactive lane
    pace_grace_seconds: float = 30.0  # a paced phase is judged once it has run this long (warm-up first)

    def describe(self) -> str:
        return f"{self.memory_bytes / 2**30:.0f} GB of memory, {self.wall_seconds / 60:.0f} minutes"


class LaneFull(Exception):
    """No room for another job (the session has one, or the lane's queue is full)."""


QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


@dataclass
class Job:
    id: int
    session: str
    module: str
    spec: dict
    out: Path
    state: str = QUEUED
    progress: tuple[int, int, str] | None = None
    message: str = ""
    started: float | None = None
    ended: float | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _proc_done: threading.Event = field(default_factory=threading.Event, repr=False)
    _lane: "Lane | None" = field(default=None, repr=False)
    _ran: float = field(default=0.0, repr=False)  # seconds it has run, paused time not counted (the watchdog's)
    _pace: tuple[str, float, int] | None = field(default=None, repr=False)  # its paced phase: (text, ran, done) at its start

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def position(self) -> int:
        """Jobs ahead of this one in the queue (0 once it runs or has ended)."""
        return self._lane.position(self) if self._lane is not None else 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (or ``timeout``); whether it has."""
        return self._finished.wait(timeout)

    def cancel(self) -> None:
        """Stop the job: out of the queue, or its process group killed. Idempotent."""
        if self._lane is not None:
            self._lane.cancel(self)


class Lane:
    """At most ``slots`` jobs run at once, at most ``max_jobs`` are queued or running, and a
    session has at most one; jobs start in arrival order."""

    def __init__(self, slots: int = 1, max_jobs: int = 8, limits: Limits = Limits(), env: dict | None = None):
        """``env``: variables the jobs' processes get besides the server's own."""
        self.slots, self.max_jobs, self.limits, self.env = slots, max_jobs, limits, dict(env or {})
        self._jobs: list[Job] = []  # queued and running, in arrival order
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._paused = 0

    # ------------------------------------------------------------------ the caller's side
    def submit(self, session: str, module: str, spec: dict, out: Path) -> Job:
        """Queue ``module``'s job with ``spec``; its files go under ``out`` (created here)."""
        if module not in JOB_MODULES:  # never a name from a request: the server's own constants
            raise ValueError(f"not a job module: {module!r}")
        with self._cond:
            if any(j.session == session for j in self._jobs):
                raise LaneFull("You already have a job running or queued; wait for it or press Stop.")
            if len(self._jobs) >= self.max_jobs:
                raise LaneFull(f"The server is busy with {len(self._jobs)} jobs; try again in a few minutes.")
            job = Job(next(self._ids), session, module, spec, Path(out), _lane=self)
            job.out.mkdir(parents=True, exist_ok=True)
            self._jobs.append(job)
        threading.Thread(target=self._run, args=(job,), name=f"lane-job-{job.id}", daemon=True).start()
        return job

    def position(self, job: Job) -> int:
        with self._cond:
            if job.state != QUEUED or job not in self._jobs:
                return 0
            return self._jobs.index(job)  # the jobs ahead of it, running or queued

    def cancel(self, job: Job) -> None:
        with self._cond:
            if job.finished:
                return
            if job.state == QUEUED:
                self._end(job, CANCELLED, "Cancelled.")
                return
            proc = job._proc
            job.message = "Cancelled."
            job.state = CANCELLED
        if proc is not None:
            _kill(proc)

    def cancel_session(self, session: str) -> None:
        """Cancel the session's job, if it has one (the browser session ended)."""
        with self._cond:
            jobs = [j for j in self._jobs if j.session == session]
        for j in jobs:
            j.cancel()

    def pause(self) -> None:
        """Stop the running jobs' processes (SIGSTOP) until as many ``resume`` calls: while the
        interactive views compute, they get the CPUs and memory bandwidth to themselves. Paused
        time does not count against a job's wall limit."""
        with self._cond:
            self._paused += 1
            if self._paused == 1:
                self._signal_running(signal.SIGSTOP)

    def resume(self) -> None:
        with self._cond:
            self._paused = max(0, self._paused - 1)
            if self._paused == 0:
                self._signal_running(signal.SIGCONT)
                self._cond.notify_all()

    def _signal_running(self, sig) -> None:
        for j in self._jobs:
            if j.state == RUNNING and j._proc is not None:
                try:
                    os.killpg(j._proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    @property
    def active(self) -> list[Job]:
        with self._cond:
            return list(self._jobs)

    # ------------------------------------------------------------------ the job's thread
    def _run(self, job: Job) -> None:
        with self._cond:
            while not job.finished and not self._may_start(job):
                self._cond.wait()
            if job.finished:  # cancelled while queued
                return
            job.state, job.started = RUNNING, time.monotonic()
            spec_path = job.out / "spec.json"
            spec_path.write_text(json.dumps(job.spec))
            try:
                job._proc = self._spawn(job, spec_path)
            except OSError as e:
                _log.error("job %s did not start: %s", job.id, e)
                self._end(job, FAILED, "The job could not be started; try again.")
                return
        watchdog = threading.Thread(target=self._watch, args=(job,), name=f"lane-watch-{job.id}", daemon=True)
        watchdog.start()
        result = None
        try:
            for line in job._proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # a library printing to stdout: not the protocol
                if not isinstance(msg, dict):
                    continue
                if isinstance(msg.get("progress"), list) and len(msg["progress"]) == 3:
                    d, t, text = msg["progress"]
                    job.progress = (int(d), int(t), str(text)[:200])
                    if msg.get("paced") is True:
                        self._check_pace(job, int(d), int(t), str(text)[:200])
                elif "ok" in msg or "error" in msg:
                    result = msg
            job._proc.wait()
        finally:
            job._proc_done.set()  # the watchdog stops
            _kill(job._proc)  # whatever the job started in its group ends with it
        with self._cond:
            if job.state == CANCELLED:
                self._end(job, CANCELLED, job.message or "Cancelled.")
            elif job.state == "slow":
                self._end(job, FAILED, job.message)
            elif job.state == "timeout":
                self._end(job, FAILED, f"The job ran longer than the {self.limits.wall_seconds / 60:.0f} minutes "
                                       "a job may take; try fewer images or models, or a smaller image size.")
            elif result and result.get("ok") and job._proc.returncode == 0:
                self._end(job, DONE, "")
            elif result and "error" in result:
                self._end(job, FAILED, str(result["error"])[:500])
            else:
                self._end(job, FAILED, f"The job ran out of the memory or time it may use ({self.limits.describe()}); "
                                       "try fewer images or models, or a smaller image size.")

    def _may_start(self, job: Job) -> bool:
        running = sum(1 for j in self._jobs if j.state == RUNNING)
        first_queued = next((j for j in self._jobs if j.state == QUEUED), None)
        return running < self.slots and first_queued is job and not self._paused

    #: How often the watchdog looks at a running job's clock.
    WATCH_S = 0.5

    def _watch(self, job: Job) -> None:
        """End the job once it has *run* for the wall limit: time while the lane is paused (an
        interactive view computing) does not count, so a busy page never times a job out."""
        ran, last = 0.0, time.monotonic()
        while not job._proc_done.wait(self.WATCH_S):
            now = time.monotonic()
            with self._cond:
                paused = self._paused > 0
            if not paused:
                ran += now - last
            last = now
            job._ran = ran
            if ran >= self.limits.wall_seconds:
                self._timeout(job)
                return

    def _check_pace(self, job: Job, done: int, total: int, phase: str) -> None:
        """A job whose paced phase (steps of the bulk of its work, ``done`` of ``total``; a phase
        is named by its text) would, at the pace it has kept since that phase's first line, run
        past the wall limit is ended now with a message saying so, not when the limit comes (a
        shared lane is not held for nothing). A later phase is not foreseen: it is judged when it
        runs."""
        ran = job._ran
        if job._pace is None or job._pace[0] != phase:
            job._pace = (phase, ran, done)
            return
        _, ran0, done0 = job._pace
        if done <= done0 or done >= total or ran - ran0 < self.limits.pace_grace_seconds:
            return
        needed = ran + (ran - ran0) * (total - done) / (done - done0)
        if needed <= self.limits.wall_seconds:
            return
        what = f" ({phase})" if phase else ""
        self._stop(job, "slow", f"At the pace of its first {done:,} of {total:,} steps{what}, this job would need "
                                f"about {_duration(needed)}; a job may run {_duration(self.limits.wall_seconds)}. "
                                "Try fewer images or models, or a smaller image size.")

    def _timeout(self, job: Job) -> None:
        self._stop(job, "timeout")

    def _stop(self, job: Job, state: str, message: str = "") -> None:
        """Kill a running job's process, its ``state`` (and ``message``) saying why for ``_run``'s end."""
        with self._cond:
            if job.state != RUNNING:
                return
            job.state = state
            job.message = message or job.message
            proc = job._proc
        _kill(proc)

    def _end(self, job: Job, state: str, message: str) -> None:
        """With the condition held: the job leaves the lane and its waiters wake."""
        job.state, job.message, job.ended = state, message, time.monotonic()
        if job in self._jobs:
            self._jobs.remove(job)
        job._finished.set()
        self._cond.notify_all()

    def _spawn(self, job: Job, spec_path: Path) -> subprocess.Popen:
        limits = self.limits
        env = {**os.environ, **self.env}
        threads = str(limits.threads)
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, ATTENTION_LENS_JOB_THREADS=threads,
                   TMPDIR=str(job.out), PYTHONPATH=str(ROOT))

        def limit():  # in the child, before exec
            os.nice(limits.nice)
            resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        log = open(job.out / "job.log", "wb")  # the child's stderr: warnings and tracebacks
        try:
            return subprocess.Popen([sys.executable, "-m", "attention_lens.jobs.child", job.module, str(spec_path)],
                                    cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=log, text=True, preexec_fn=limit, start_new_session=True)
        finally:
            log.close()


def _duration(seconds: float) -> str:
    """A duration as a person reads it: "40 seconds", "14 minutes", "2.5 hours"."""
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _kill(proc: subprocess.Popen | None) -> None:
    """End the process and its group (start_new_session made it a group leader)."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
