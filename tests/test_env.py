"""Process settings: offline ultralytics on import, malloc reusing freed buffers at the entry points."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from attention_lens import env

ROOT = Path(__file__).resolve().parents[1]

# Allocates and frees a 4 MB result 200 times, like one activation per forward, and prints the
# page faults per iteration after warm-up.
FAULTS_PER_ALLOCATION = """
import resource, sys, torch
sys.path.insert(0, {root!r})
{setup}
x = torch.rand(1 << 20)
for _ in range(5):
    y = x * 2; del y
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    y = x * 2; del y
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 200)
"""


def faults_per_allocation(setup: str) -> float:
    code = FAULTS_PER_ALLOCATION.format(root=str(ROOT), setup=setup)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_keep_freed_buffers_makes_malloc_reuse_freed_activation_buffers():
    # Control: glibc's defaults with the dynamic threshold pinned, as a fresh process has them
    # before its first large free: every 4 MB result is mapped fresh and faulted in.
    untuned = faults_per_allocation("import ctypes; ctypes.CDLL(None).mallopt(-3, 128 * 1024)")
    assert untuned > 500, untuned  # 4 MB is 1024 pages
    assert env.keep_freed_buffers()
    # Not zero: the first large buffer must be faulted in once, and this VM's kernel reclaims
    # idle pages now and then. Untuned, every iteration faults all of its pages.
    assert faults_per_allocation("import attention_lens.env as e; e.keep_freed_buffers()") < untuned / 10


def test_keep_freed_buffers_is_a_no_op_off_linux(monkeypatch):
    monkeypatch.setattr(env.sys, "platform", "darwin")
    assert env.keep_freed_buffers() is False


def test_offline_settings_respect_the_users_and_fix_an_unwritable_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    monkeypatch.setenv("YOLO_CONFIG_DIR", "/proc/not-writable")
    env.configure_offline()
    assert os.environ["YOLO_OFFLINE"] == "0"
    config_dir = Path(os.environ["YOLO_CONFIG_DIR"])
    assert config_dir.is_dir() and os.access(config_dir, os.W_OK)


def test_a_killed_servers_temporary_folder_is_swept_and_a_live_ones_kept(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer runs
    leftover = tmp_path / f"{env.RUN_PREFIX}{dead.pid}"
    (leftover / "sessions" / "s1").mkdir(parents=True)
    mine = env.run_folder()
    other = tmp_path / f"{env.RUN_PREFIX}1"  # init: alive
    other.mkdir()
    assert env.sweep_dead_runs() == [leftover]
    assert not leftover.exists() and mine.is_dir() and other.is_dir()
