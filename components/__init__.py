"""Attention Lens: compare attention-augmented YOLO detectors with a baseline.

Importing the package applies the offline settings (no downloads, no auto-installs) so that
any later ``import ultralytics`` sees them.
"""
from .env import configure_offline

configure_offline()
