"""``python -m bench [--quick] [--weights DIR] [--out FILE]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import attention_lens  # noqa: F401  (offline ultralytics before anything imports it)
from bench.run import ROOT, default_out, run_bench
from attention_lens.env import keep_freed_buffers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="measure module, model, pipeline and start-up cost")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--weights", default=str(ROOT / "weights"))
    p.add_argument("--out", help="where to write (default: docs/PERFORMANCE.md for a full run, "
                                 "test-artifacts/PERFORMANCE-quick.md for --quick, so a quick run never "
                                 "overwrites the tracked document)")
    a = p.parse_args(argv)
    keep_freed_buffers()
    print(run_bench(a.quick, Path(a.weights), Path(a.out) if a.out else default_out(a.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
