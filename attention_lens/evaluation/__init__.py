"""Models over a labelled split: predict, match, summarise, compare; no figures.

- ``coco``                 COCO matching with pycocotools, metrics, objects found by two models
- ``predict``              every model's detections over a split in one pass, cached by model content
- ``ultralytics_metrics``  the val-comparable mAP from ultralytics' own metric functions
- ``bootstrap``            paired bootstrap over images: intervals and verdicts
- ``error_types``          TIDE's error types, their dAP, object-by-object outcomes
- ``report``               one evaluation against a reference: every number, as one JSON-ready dict
- ``stored``               the stored-detections format (numbers only, for a split without its images)

Imports within the package run one way: coco, predict, ultralytics_metrics, bootstrap, error_types,
stored, report.
"""
