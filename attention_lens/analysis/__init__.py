"""One image through the selected models, on top of ``runtime`` (one forward).

- ``images`` (decoding an upload within limits), ``render`` (boxes drawn, one colour per class)
- ``compare`` and ``diff``: several models' detections on one image, matched against a reference
- ``heatmaps``, ``attention_view``: every attention layer's maps on the image; ``layercam`` for a
  model without attention; ``query_view``: where one location looks (self-attention)
- ``explain`` (grad-cam for one detection), ``box_attention`` (a box's cells' self-attention)
- ``localisation``: where a model's maps fall on an image's labelled objects

Figures are drawn in ``views``; a labelled split is evaluated in ``evaluation``.
"""
