"""One import to use the attention layers with ultralytics' own API.

    import components.yolo
    from ultralytics import YOLO
    YOLO("my-variant.yaml").train(...)
"""
from . import configure_offline

configure_offline()

from ultralytics import YOLO  # noqa: E402

from .integration import register  # noqa: E402

register()

__all__ = ["YOLO"]
