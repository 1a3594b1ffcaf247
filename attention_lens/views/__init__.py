"""Figures, tables and HTML drawn from plain results; nothing here runs a model.

- ``charts``            the Metrics tab's figures from stored runs
- ``attention_matrix``  the Attention tab's matrix of maps (one row a model, one column a stride)
- ``heads``             self-attention heads' distance and entropy
- ``channels``          channel gates' sorted weights
- ``result_grid``       several models' detections on one image, in a grid
- ``image_review``      one image of a split with its objects and both models' boxes
- ``localisation``      where the maps fall over a split (table and chart)
- ``results``           an evaluation's tables, figures and HTML report
"""
