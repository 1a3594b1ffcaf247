"""Analysis of one image and of a labelled split, on top of ``runtime`` (one forward).

- one image: ``images`` (decoding), ``compare``, ``diff``, ``render``, ``result_grid``,
  ``heatmaps``, ``attention_view``, ``attention_matrix``, ``layercam``, ``explain``, ``localisation``
- a split: ``evaluation`` (predict, COCO matching), ``bootstrap``, ``dataset_report``,
  ``evaluation_views``, ``image_review``
- ``charts`` (the Metrics tab's figures)
"""
