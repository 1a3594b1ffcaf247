"""Data sets as data: what training and the app alike read from a labelled folder or an upload.

- ``voc_tree``     a Pascal VOC set found by its content, whatever its folders are called
- ``image_files``  an image file checked as ultralytics checks a data set's images
- ``convert``      VOC to YOLO labels (``voc2yolo``)
- ``archives``     uploaded zips, unpacked within limits
- ``yaml_files``   plain YAML from uploads (no tags, bounded size)
- ``datasets``     ``Split``: a labelled split opened for evaluation, fingerprinted by its pixels

Imports within the package run one way: voc_tree, image_files, yaml_files, archives, convert,
datasets.
"""
