"""Models: building them and loading them from files someone else wrote.

- ``variants``, ``integration``, ``models``, ``yolo``: a variant (base, attention, placement) as a
  YAML dict, ultralytics' parser wrapped once to build this project's attention layers
- ``checkpoints`` (records and the checks every builder shares), ``checkpoint_reader`` (the
  sandboxed unpickler, run as its own process), ``yaml_layers`` (the names and values a YAML may
  carry), ``foreign_layers`` (other code bases' attention classes mapped onto ours), ``foreign``
  (YAML-described models rebuilt),
  ``yolov5_classic``, ``yolox``, ``cost`` (the meta-device size probe), ``load`` (the one door
  from a file to a model)
- ``built_in`` (ultralytics' own self-attention swapped for the tapped rebuilds after a build)
- ``identity`` (a model's cache key), ``catalog`` (the shipped zoo and uploads)
"""
