"""Models over a labelled split: predict, match, summarise, compare; no figures.

- ``coco``                 COCO matching with pycocotools, metrics, objects found by two models
- ``ultralytics_metrics``  the val-comparable mAP from ultralytics' own metric functions
- ``bootstrap``            paired bootstrap over images: intervals and verdicts
- ``error_types``          TIDE's error types, their dAP, object-by-object outcomes
- ``report``               one evaluation: each model's detections (one pass, cached), the
                           results against the reference; the stored-detections format

Imports within the package run one way: coco, ultralytics_metrics, bootstrap, error_types, report.
"""
