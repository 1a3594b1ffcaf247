"""Experiments: data sets, training, costs, stored runs and their tables.

- ``voc_tree`` (a Pascal VOC set found by content, any folder names), ``image_files`` (an image
  file checked as ultralytics checks a data set's images), ``data`` (voc2yolo), ``datasets`` (a labelled split opened for evaluation, fingerprinted by its
  pixels), ``archives`` (uploaded zips, unpacked safely), ``yaml_files`` (plain YAML from uploads)
- ``train``, ``evaluate`` (ultralytics' val into a run's summary), ``flops``, ``latency``,
  ``recost``, ``zoo`` (shipping a run into the catalogue)
- ``runs`` (stored runs read as data), ``metrics`` (the runs table), ``cost_job`` (costing an
  upload's checkpoints as a lane job)
"""
