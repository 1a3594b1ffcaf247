"""One forward of one model: the seam every view and every evaluation crosses.

- ``letterbox``     the input (ultralytics' letterbox), its geometry, the accepted image sizes
- ``capture``       where a model's attention is, and the one hook keeper that records it
- ``detect``        a detection pass (forward, NMS, boxes in image pixels), one image or a batch
- ``onnx_session``, ``onnx_check``, ``onnx_backend``  the ONNX Runtime fast path: a session,
  the check against PyTorch before a graph is used, the export cache and registry

Imports within the package run one way: letterbox, capture, onnx_session, onnx_check,
onnx_backend, detect.
"""
