"""The child side of a lane job: read the spec, report progress, end with one result line.

A job module has ``main(spec: dict, report) -> None`` and is started as
``python -m attention_lens.jobs.child MODULE SPEC_PATH``. Everything it writes goes under the job's
``out`` folder (the parent reads only that); stdout carries JSON lines only: ``{"progress":
[done, total, text]}`` while it works (with ``"paced": true`` for the steps of its bulk), then
``{"ok": true}`` or ``{"error": message}``. A
message in ``error`` is shown to the user, so a job raises ``JobError`` with words meant for
them; anything else is logged here (stderr, the server log) and reported as one plain line.
"""
from __future__ import annotations

import importlib
import json
import sys
import traceback

from attention_lens.jobs import JobError

#: Modules a lane may start: the one table both sides check (``Lane.submit`` in the server, ``main``
#: here), so nothing a request or a file carries can name what the child imports. The module name
#: comes from the server's own code (a constant per job kind); the spec is JSON data.
JOB_MODULES = {"attention_lens.app.evaluate_job", "attention_lens.experiments.cost_job", "attention_lens.jobs.selftest"}


def _send(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def report(done: int, total: int, text: str = "", paced: bool = False) -> None:
    """One progress line. ``paced``: these steps are the bulk of the job, evenly sized, so the lane
    may project the job's running time from their pace (``Lane._check_pace``)."""
    msg = {"progress": [int(done), int(total), str(text)[:200]]}
    if paced:
        msg["paced"] = True
    _send(msg)


def main(argv: list[str]) -> int:
    module, spec_path = argv
    if module not in JOB_MODULES:
        _send({"error": "unknown job"})
        return 2
    try:
        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
        importlib.import_module(module).main(spec, report)
    except JobError as e:
        _send({"error": str(e)})
        return 1
    except MemoryError:
        _send({"error": "The job ran out of the memory it may use."})
        return 1
    except Exception:  # noqa: BLE001  (the log gets the traceback, the user one line)
        traceback.print_exc()
        _send({"error": "The job failed on our side; the server log has the details."})
        return 1
    _send({"ok": True})
    return 0


if __name__ == "__main__":
    import attention_lens  # noqa: F401  (offline settings before ultralytics loads)

    sys.exit(main(sys.argv[1:]))
