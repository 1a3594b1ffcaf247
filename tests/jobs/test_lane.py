"""The long-work lane: limits, queue order, one job per session, cancel (issue 31)."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from attention_lens.jobs.lane import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Lane, LaneFull, Limits

SELFTEST = "attention_lens.jobs.selftest"


def children() -> set[int]:
    """Process ids whose parent is this process (from /proc, independently of the lane)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.add(int(entry))
    return found


def until(condition, timeout: float = 60.0) -> bool:
    """Waits on the job's own state (no fixed sleeps): True once ``condition()`` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_job_reports_progress_and_finishes(tmp_path):
    lane = Lane()
    job = lane.submit("a", SELFTEST, {"steps": 4}, tmp_path / "a")
    assert job.wait(60) and job.state == DONE and job.message == ""
    assert job.progress == (4, 4, "self-test")
    assert (tmp_path / "a" / "spec.json").is_file()


def test_a_job_error_reaches_the_user_as_its_own_words(tmp_path):
    job = Lane().submit("a", SELFTEST, {"fail": "Data set refused: no images"}, tmp_path / "a")
    assert job.wait(60) and job.state == FAILED and job.message == "Data set refused: no images"


def test_jobs_run_in_arrival_order_one_at_a_time_and_one_per_session(tmp_path):
    lane = Lane(slots=1, max_jobs=3)
    first = lane.submit("a", SELFTEST, {"sleep_s": 30}, tmp_path / "a")
    assert until(lambda: first.state == RUNNING)
    second = lane.submit("b", SELFTEST, {}, tmp_path / "b")
    third = lane.submit("c", SELFTEST, {}, tmp_path / "c")
    assert (second.state, second.position(), third.position()) == (QUEUED, 1, 2)
    with pytest.raises(LaneFull, match="already have a job"):
        lane.submit("a", SELFTEST, {}, tmp_path / "a2")
    with pytest.raises(LaneFull, match="busy"):
        lane.submit("d", SELFTEST, {}, tmp_path / "d")
    third.cancel()  # out of the queue without ever starting
    assert third.state == CANCELLED and second.position() == 1
    first.cancel()
    assert second.wait(60) and second.state == DONE and first.state == CANCELLED
    assert lane.active == []


def test_a_cancelled_job_leaves_no_process_behind(tmp_path):
    baseline = children()
    lane = Lane()
    job = lane.submit("a", SELFTEST, {"spin_s": 60}, tmp_path / "a")
    assert until(lambda: job.progress is not None)  # its process runs and works
    assert children() - baseline
    job.cancel()
    assert job.wait(10) and job.state == CANCELLED
    assert until(lambda: children() == baseline, 10)


def test_memory_and_wall_limits_end_a_job_with_a_plain_message(tmp_path):
    lane = Lane(limits=Limits(memory_bytes=512 * 2**20, wall_seconds=60))
    job = lane.submit("a", SELFTEST, {"allocate_bytes": 2 * 2**30}, tmp_path / "a")
    assert job.wait(60) and job.state == FAILED and "memory" in job.message
    lane = Lane(limits=Limits(wall_seconds=3))
    start = time.monotonic()
    job = lane.submit("a", SELFTEST, {"sleep_s": 60}, tmp_path / "b")
    assert job.wait(30) and job.state == FAILED and "longer than" in job.message
    assert time.monotonic() - start < 20


def test_the_session_end_cancels_its_job(tmp_path):
    lane = Lane()
    job = lane.submit("gone", SELFTEST, {"sleep_s": 60}, tmp_path / "a")
    assert until(lambda: job.state == RUNNING)
    lane.cancel_session("gone")
    assert job.wait(10) and job.state == CANCELLED


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_pause_stops_the_running_jobs_process_until_the_last_resume(tmp_path):
    lane = Lane()
    job = lane.submit("a", SELFTEST, {"spin_s": 60}, tmp_path / "a")
    assert until(lambda: job.progress is not None)
    pid = job._proc.pid
    lane.pause()
    lane.pause()  # two interactive requests overlap
    assert until(lambda: process_state(pid) == "T", 10)
    queued = lane.submit("b", SELFTEST, {}, tmp_path / "b")
    lane.resume()
    assert process_state(pid) == "T"  # one request still computes
    lane.resume()
    assert until(lambda: process_state(pid) in "RS", 10)
    job.cancel()
    assert queued.wait(60) and queued.state == DONE


def test_time_paused_for_the_interactive_views_does_not_count_against_the_wall_limit(tmp_path):
    lane = Lane(limits=Limits(wall_seconds=2))
    job = lane.submit("a", SELFTEST, {"sleep_s": 1.0}, tmp_path / "a")
    assert until(lambda: job.progress is not None)
    lane.pause()
    start = time.monotonic()
    while time.monotonic() - start < 3:  # a long interactive burst: longer than the whole wall limit
        assert not job.finished
        time.sleep(0.1)  # the scenario's own duration, not a synchronisation
    lane.resume()
    assert job.wait(30) and job.state == DONE


def test_only_the_job_modules_of_the_table_start_in_either_process(tmp_path):
    import subprocess
    import sys

    with pytest.raises(ValueError, match="not a job module"):
        Lane().submit("a", "os", {}, tmp_path / "a")
    # The child refuses too, before importing anything by that name.
    marker = tmp_path / "imported"
    (tmp_path / "evil_job.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "spec.json").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "attention_lens.jobs.child", "evil_job", str(tmp_path / "spec.json")],
                         cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": f"{tmp_path}"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and '"error": "unknown job"' in out.stdout and not marker.exists()


def test_a_job_that_cannot_finish_in_time_is_ended_at_its_pace_not_at_the_limit(tmp_path):
    """Under a 6 s wall limit: a paced phase of 20 steps of 0.05 s (1 s) runs, then one of 400 (20 s):
    once the second has run its grace, the lane projects about 20 s more and ends the job, saying
    why, long before the wall limit (the first phase's fast pace does not vouch for the second);
    the first phase alone finishes."""
    lane = Lane(limits=Limits(wall_seconds=6, pace_grace_seconds=0.5))
    job = lane.submit("a", SELFTEST, {"phases": [[20, 0.05], [400, 0.05]]}, tmp_path / "a")
    assert job.wait(60) and job.state == FAILED
    assert re.search(r"this job would need about \d\d seconds; a job may run 6 seconds\.", job.message)
    assert job.message.startswith("At the pace of its first ") and "of 400 steps (paced phase 1)" in job.message
    assert "Try fewer images or models" in job.message
    assert job._ran < 4  # ended on its pace, not by the wall limit
    done, total, _ = job.progress
    assert 0 < done < total
    fits = lane.submit("b", SELFTEST, {"phases": [[20, 0.05]]}, tmp_path / "b")
    assert fits.wait(60) and fits.state == DONE
