"""The project as a package: checkpoints it writes load in plain ultralytics where it is installed,
and where it is absent, loading one installs nothing (issue 34, item 8)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from attention_lens.attention import CHECKPOINT_MODULE
from tests.pickles import pickled_globals

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "weights" / "yolov8n-cbam-neck-s0" / "best.pt"
IMAGE = ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"

#: Plain ultralytics with its default settings (AutoInstall on), told it is online, with every
#: package-manager call recorded and answered by pip itself in --dry-run mode against no index.
PLAIN_LOAD = r"""
import json, subprocess, sys
from ultralytics.utils import checks
real = subprocess.check_output
calls = []
def recording(cmd, *a, **k):
    calls.append([str(c) for c in cmd])
    return real([*cmd, "--dry-run", "--no-index"], *a, **k)
checks.subprocess.check_output = recording
checks.ONLINE = True
checks.check_uv = lambda: False
from ultralytics import YOLO
result = {"calls": calls}
try:
    model = YOLO(sys.argv[1])
    boxes = model.predict(sys.argv[2], imgsz=320, verbose=False)[0].boxes
    result["loaded"] = sorted({type(m).__module__ + "." + type(m).__name__ for m in model.model.modules()
                               if type(m).__module__.startswith("_attention")})
    result["boxes"] = len(boxes)
except Exception as e:
    result["error"] = f"{type(e).__name__}: {e}"
print("RESULT " + json.dumps(result))
"""


def plain_ultralytics(python: str, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "ULTRALYTICS_", "PYTHON"))}
    env["YOLO_CONFIG_DIR"] = str(cwd / "config")
    r = subprocess.run([python, "-I", "-c", PLAIN_LOAD, str(CHECKPOINT), str(IMAGE)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(line[len("RESULT "):])


def test_no_zoo_checkpoint_names_the_old_package_or_anything_installable():
    for path in sorted((ROOT / "weights").glob("*/best.pt")):
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        assert b"components" not in data, path.parent.name
        foreign = {g.split(".")[0] for g in pickled_globals(data)} - {"torch", "collections", "builtins",
                                                                      "__builtin__", "ultralytics"}
        assert foreign <= {CHECKPOINT_MODULE}, (path.parent.name, foreign)


def test_where_the_project_is_absent_loading_its_checkpoint_installs_nothing(tmp_path):
    # -I: neither the working folder nor PYTHONPATH is on sys.path, so the project is not importable
    result = plain_ultralytics(sys.executable, tmp_path)
    assert "_attention_lens" in result.get("error", ""), result
    for cmd in result["calls"]:
        named = [c for c in cmd[cmd.index("install") + 1:] if not c.startswith("-")]
        for requirement in named:
            with pytest.raises(InvalidRequirement):
                Requirement(requirement)  # pip refuses it before asking any index
    assert all("_attention_lens" in " ".join(cmd) for cmd in result["calls"])


def test_with_the_project_installed_plain_ultralytics_loads_and_runs_its_checkpoint(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    r = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                        "-e", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = plain_ultralytics(python, tmp_path)
    assert "error" not in result, result
    assert result["calls"] == []
    assert result["loaded"] == [f"{CHECKPOINT_MODULE}.CBAM", f"{CHECKPOINT_MODULE}.Gate"]
    assert isinstance(result["boxes"], int)
