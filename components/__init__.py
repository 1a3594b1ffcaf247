"""Attention Lens: compare attention-augmented YOLO detectors with a baseline.

Importing the package applies the process settings: offline ultralytics (no downloads, no
auto-installs) before any later ``import ultralytics``, and a malloc that reuses activation
buffers (see env.py).
"""
from .env import configure_offline, keep_freed_buffers

configure_offline()
keep_freed_buffers()
