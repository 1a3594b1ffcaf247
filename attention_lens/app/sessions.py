"""Per-session folders for the files the app writes (downloads, reports): one per browser
session, emptied before each write, swept when idle, removed when the session ends."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from attention_lens.env import run_folder

#: Per-session folders for files the app writes (downloads, the metrics CSV): one per browser
#: session, emptied before each write, removed when the session ends (``end_session``).
SESSIONS_ROOT = run_folder() / "sessions"


def _session_root(session: str | None) -> Path:
    name = re.sub(r"[^A-Za-z0-9_-]", "", str(session or "anonymous"))[:64] or "anonymous"
    return SESSIONS_ROOT / name


def session_folder(session: str | None, part: str = "attention") -> Path:
    """An empty folder for one kind of file (``part``) of ``session`` (gradio's session hash).

    Sessions whose folders were not touched for a state lifetime are swept on the way: a client
    that never closes its session (a script, a crawler) leaves nothing behind for long."""
    from attention_lens.app.widgets import STATE_TTL_S

    sweep_sessions(STATE_TTL_S)
    folder = _session_root(session) / part
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sweep_sessions(max_age_s: float) -> None:
    """Remove session folders not written to for ``max_age_s`` seconds."""
    import time

    if not SESSIONS_ROOT.is_dir():
        return
    cutoff = time.time() - max_age_s
    for folder in SESSIONS_ROOT.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def end_session(session: str | None) -> None:
    """Remove everything the app wrote for ``session``."""
    if session:
        shutil.rmtree(_session_root(session), ignore_errors=True)
