"""One import to use the attention layers with ultralytics' own API.

    import attention_lens.modeling.yolo
    from ultralytics import YOLO
    YOLO("my-variant.yaml").train(...)
"""
from ultralytics import YOLO

from attention_lens.modeling.integration import register

register()

__all__ = ["YOLO"]
