"""The layer names a YAML row may carry: one explicit table, checked before any parser sees a row.

Ultralytics' ``parse_model`` resolves a row's name among ``ultralytics.nn.tasks``' globals (every
function and class that module imports: ``torch_load``, ``yaml_model_load``, ``check_requirements``
...), ``torch.nn`` and ``torchvision.ops``. A name that a file carries is data, so it is looked up
here and nowhere else: a name outside this table is refused before the dict reaches the parser.

The table holds the detection layers of ultralytics' own model YAMLs (v3, v5, v6, v8, v9, v10, 11,
12, 26, RT-DETR), the torch layers those YAMLs name, and this project's attention layers. Layers
that load other models or weights by name (``TorchVision``), need a text encoder (the YOLO-World
and YOLOE heads, ``C2fAttn``, ``ImagePoolingAttn``), or head other tasks (segment, pose, OBB,
classify) are left out: Attention Lens compares detectors.
"""
from __future__ import annotations

#: ultralytics' layers a YAML row may name (resolved by ultralytics among ``tasks``' globals).
ULTRALYTICS_ROWS = frozenset({
    # convolutions and plain blocks
    "Conv", "Conv2", "DWConv", "GhostConv", "RepConv", "ConvTranspose", "DWConvTranspose2d", "Focus",
    "Concat", "Bottleneck", "BottleneckCSP", "GhostBottleneck", "SPP", "SPPF", "SPPELAN", "SCDown", "ADown",
    "AConv", "CBLinear", "CBFuse",
    # CSP families
    "C1", "C2", "C2f", "C3", "C3x", "C3TR", "C3Ghost", "C3k2", "C2fCIB", "RepC3", "RepNCSPELAN4", "ELAN1",
    # blocks with self-attention (YOLOv10, YOLO11, YOLO12, YOLO26)
    "PSA", "C2PSA", "C2fPSA", "A2C2f",
    # RT-DETR's backbone and encoder
    "HGStem", "HGBlock", "ResNetLayer", "AIFI",
    # detection heads
    "Detect", "v10Detect", "RTDETRDecoder",
})

#: torch layers a row may name as ``nn.X`` (resolved by ultralytics in ``torch.nn``).
TORCH_ROWS = frozenset({"nn.Upsample", "nn.Identity", "nn.MaxPool2d", "nn.BatchNorm2d", "nn.ZeroPad2d",
                        "nn.ConvTranspose2d"})


def allowed_rows(ours: frozenset[str] | set[str]) -> frozenset[str]:
    """Every name a row may carry: ultralytics' and torch's rows above, plus ``ours`` (this
    project's attention layers, which its wrapper of the parser builds)."""
    return ULTRALYTICS_ROWS | TORCH_ROWS | frozenset(ours)


def refused_rows(rows: list, ours: frozenset[str] | set[str]) -> list[tuple[int, str]]:
    """(index, name) of each row whose layer name is not in the table (or not a string)."""
    allowed = allowed_rows(ours)
    return [(i, row[2] if isinstance(row[2], str) else type(row[2]).__name__) for i, row in enumerate(rows)
            if isinstance(row, list) and len(row) == 4 and not (isinstance(row[2], str) and row[2] in allowed)]
