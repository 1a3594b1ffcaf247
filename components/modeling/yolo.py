"""One import to use the attention layers with ultralytics' own API.

    import components.modeling.yolo
    from ultralytics import YOLO
    YOLO("my-variant.yaml").train(...)
"""
from ultralytics import YOLO

from components.modeling.integration import register

register()

__all__ = ["YOLO"]
