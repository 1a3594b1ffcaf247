"""Models over a labelled split: predict, match, summarise, compare; no figures.

- ``coco``                 COCO matching with pycocotools, metrics, objects found by two models
- ``predict``              every model's detections over a split in one pass, cached by model content
- ``ultralytics_metrics``  the val-comparable mAP from ultralytics' own metric functions
- ``bootstrap``            paired bootstrap over images: intervals and verdicts
- ``ranked_ap``            COCO's 101-point AP of ranked detections, for one weighting of the images or many
- ``error_types``          TIDE's error types, their dAP, object-by-object outcomes
- ``error_deltas``         a model's dAP against a reference's: bootstrap series, intervals, a sentence
- ``report``               one evaluation against a reference: every number, as one JSON-ready dict
- ``stored``               the stored-detections format (numbers only, for a split without its images)

Imports within the package run one way: coco, predict, ultralytics_metrics, bootstrap, ranked_ap,
error_types, error_deltas, stored, report.
"""
