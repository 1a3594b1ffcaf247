"""Attention Lens: compare attention-augmented YOLO detectors with a baseline.

Layers, each importing only from the ones above it:

- ``env``, ``device``, ``cache``, ``torch_thread``  process settings, where the models run, the one
  cache policy, the torch thread
- ``jobs``        the long-work lane: child processes with limits, a queue, a cancel
- ``data``        data sets as data: VOC trees, conversion, uploaded archives, labelled splits
- ``attention``   the six modules (one file per mechanism), their gates and factory
- ``modeling``    variants, ultralytics integration, checkpoint reading, foreign code bases, the catalogue
- ``experiments`` training, ultralytics' val, costs, stored runs and their tables
- ``runtime``     one forward of one model: letterbox, capture, detect, the ONNX Runtime fast path
- ``analysis``    one image: comparison, attention maps, explanations, localisation
- ``evaluation``  models over a labelled split: predict, COCO matching, intervals, error types
- ``views``       figures, tables and HTML from plain results (no model)
- ``app``         the Gradio layout and its handlers
- ``cli``         ``python -m attention_lens``

Importing the package keeps ultralytics offline (no downloads, no auto-installs): that must
happen before the first ``import ultralytics``, wherever the package is used from. Process-wide
tuning (``env.keep_freed_buffers``) is applied by the entry points (app.py, the CLI, the bench).
"""
from attention_lens.env import configure_offline

configure_offline()
