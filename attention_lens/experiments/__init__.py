"""Experiments: training, costs, stored runs and their tables.

- ``train``, ``evaluate`` (ultralytics' val into a run's summary), ``flops``, ``latency``,
  ``recost``, ``zoo`` (shipping a run into the catalogue)
- ``runs`` (stored runs read as data), ``metrics`` (the runs table), ``cost_job`` (costing an
  upload's checkpoints as a lane job)

Data sets themselves (VOC trees, conversion, archives, splits) are in ``data``.
"""
