"""What a YAML may hold: the layer names (one explicit table) and the values of every row,
checked before any parser sees them.

Ultralytics' ``parse_model`` resolves a row's name among ``ultralytics.nn.tasks``' globals (every
function and class that module imports: ``torch_load``, ``yaml_model_load``, ``check_requirements``
...), ``torch.nn`` and ``torchvision.ops``. A name that a file carries is data, so it is looked up
here and nowhere else: a name outside this table is refused before the dict reaches the parser.
Its arguments must be plain literals of bounded size (strings only from a short list), its
activation one of a few exact texts (ultralytics evaluates that string).

The table holds the detection layers of ultralytics' own model YAMLs (v3, v5, v6, v8, v9, v10, 11,
12, 26, RT-DETR), the torch layers those YAMLs name, this project's attention layers, and the
other code bases' attention classes ``foreign_layers`` maps onto them. Layers that load other
models or weights by name (``TorchVision``), need a text encoder (the YOLO-World and YOLOE heads,
``C2fAttn``, ``ImagePoolingAttn``), or head other tasks (segment, pose, OBB, classify) are left
out: Attention Lens compares detectors.
"""
from __future__ import annotations

import copy

from attention_lens.attention import LAYER_CLASSES
from attention_lens.modeling.checkpoints import MAX_INT_ARG, MAX_LAYERS, MAX_MULTIPLE, MAX_REPEATS, CheckpointError
from attention_lens.modeling.foreign_layers import C3_EMA_POSITIONS, FOREIGN
from attention_lens.modeling.integration import CSP_ATTENTION, CSP_POSITIONS

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


#: Strings a row's arguments may hold (ultralytics resolves them; anything else is refused).
STRING_ARGS = {"nc", "anchors", "nearest", "bilinear", "None", "True", "False"}
#: The activations a YAML may set (ultralytics evaluates this string, so only these exact texts).
ACTIVATIONS = {"nn.SiLU()", "nn.ReLU()", "nn.ReLU6()", "nn.LeakyReLU(0.1)", "nn.Hardswish()", "nn.Mish()",
               "nn.GELU()", "nn.Identity()"}
#: YAML keys passed on to the builder; the rest (file names, comments) are dropped.
YAML_KEYS = {"nc", "scales", "scale", "depth_multiple", "width_multiple", "backbone", "head", "activation",
             "reg_max", "ch", "channels", "anchors", "end2end"}


def check_yaml(yaml, label: str) -> dict:
    """The YAML dict reduced to the keys the builder needs, every value checked. Raises CheckpointError."""
    if not isinstance(yaml, dict) or not isinstance(yaml.get("backbone"), list) or not isinstance(yaml.get("head"), list):
        raise CheckpointError(f"{label}: its model record stores no architecture (YAML with backbone and head)")
    d = copy.deepcopy({k: v for k, v in yaml.items() if k in YAML_KEYS})
    rows = d["backbone"] + d["head"]
    if not 1 < len(rows) <= MAX_LAYERS:
        raise CheckpointError(f"{label}: {len(rows)} layers; at most {MAX_LAYERS} are accepted")
    nc = d.get("nc")
    if not isinstance(nc, int) or not 0 < nc <= 10000:
        raise CheckpointError(f"{label}: bad class count nc={nc!r}")
    act = d.get("activation")
    if act is not None and act not in ACTIVATIONS:
        raise CheckpointError(f"{label}: activation {str(act)[:40]!r} is not one Attention Lens builds ({sorted(ACTIVATIONS)})")
    for key in ("depth_multiple", "width_multiple"):
        if key in d and not _number(d[key], MAX_MULTIPLE):
            raise CheckpointError(f"{label}: bad {key}")
    scales = d.get("scales")
    if scales is not None:
        if not isinstance(scales, dict) or not all(
                isinstance(v, list) and len(v) == 3 and _number(v[0], MAX_MULTIPLE) and _number(v[1], MAX_MULTIPLE)
                and _number(v[2], MAX_INT_ARG) for v in scales.values()):
            raise CheckpointError(f"{label}: bad scales")
        if d.get("scale") and d["scale"] not in scales:
            raise CheckpointError(f"{label}: scale {d['scale']!r} is not among its scales")
    anchors = d.get("anchors")
    if anchors is not None and not (
            (isinstance(anchors, int) and 0 < anchors <= 16) or
            (isinstance(anchors, list) and 0 < len(anchors) <= 8 and all(
                isinstance(a, list) and 0 < len(a) <= 32 and len(a) % 2 == 0 and all(_number(v, MAX_INT_ARG) for v in a)
                for a in anchors))):
        raise CheckpointError(f"{label}: bad anchors")
    if "end2end" in d and not isinstance(d["end2end"], bool):
        raise CheckpointError(f"{label}: bad end2end")
    for key in ("ch", "channels", "reg_max"):
        if key in d and not (isinstance(d[key], int) and 0 < d[key] <= 64):
            raise CheckpointError(f"{label}: bad {key}")
    _check_detr_rows(d["backbone"] + d["head"], label)
    # A row may name a layer of the table, or another code base's attention class that
    # ``foreign_layers`` rewrites into ours (``foreign.rebuild_yolo`` checks the rows again after it).
    refused = refused_rows(rows, our_rows() | set(FOREIGN) | set(C3_EMA_POSITIONS))
    if refused:
        i, name = refused[0]
        raise CheckpointError(f"{label}: layer {i} names {str(name)[:40]!r}, which is not a layer Attention Lens "
                              "builds; refused (nothing from the file was run)")
    strings = STRING_ARGS | allowed_rows(our_rows()) | set(CSP_POSITIONS) | {"sequential", "parallel"}
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 4):
            raise CheckpointError(f"{label}: layer {i} is not a [from, repeats, module, args] row")
        f, n, m, args = row
        if not (_index(f) or (isinstance(f, list) and 0 < len(f) <= 8 and all(_index(x) for x in f))):
            raise CheckpointError(f"{label}: layer {i} has a bad 'from' field")
        if not (isinstance(n, int) and 0 < n <= MAX_REPEATS):
            raise CheckpointError(f"{label}: layer {i} repeats {n!r} times; at most {MAX_REPEATS}")
        if not isinstance(m, str) or not isinstance(args, list) or not _literal(args, strings):
            raise CheckpointError(f"{label}: layer {i} has arguments Attention Lens does not accept")
    return d


#: RT-DETR's decoder row, [nc, hidden dim, queries, points, heads, layers, feed-forward dim]: each
#: bounded (ultralytics ships 256, 300, 4, 8, 6, 1024); the parameter count alone would let a
#: small hidden dim buy thousands of layers or sampling points.
DETR_DECODER_BOUNDS = (None, 1024, 1000, 16, 32, 12, 4096)
#: AIFI's row, [feed-forward dim, heads].
AIFI_BOUNDS = (4096, 64)


def _check_detr_rows(rows: list, label: str) -> None:
    """RT-DETR's rows take ints only, within ``DETR_DECODER_BOUNDS`` / ``AIFI_BOUNDS``; and the
    decoder, if any, is the last row (the model is then built as ultralytics' RT-DETR)."""
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 4) or row[2] not in ("RTDETRDecoder", "AIFI"):
            continue
        bounds = DETR_DECODER_BOUNDS if row[2] == "RTDETRDecoder" else AIFI_BOUNDS
        args = row[3] if isinstance(row[3], list) else [None] * 99
        if len(args) > len(bounds) or not all(b is None or (isinstance(a, int) and not isinstance(a, bool) and 0 < a <= b)
                                              for a, b in zip(args, bounds)):
            raise CheckpointError(f"{label}: layer {i} ({row[2]}) has arguments outside what Attention Lens builds "
                                  f"(at most {', '.join(str(b) for b in bounds if b)})")
        if row[2] == "RTDETRDecoder" and (i != len(rows) - 1 or row[1] != 1):
            raise CheckpointError(f"{label}: layer {i}: an RT-DETR decoder is the model's last layer, once")


def our_rows() -> set[str]:
    """The row names this project's wrapper of the parser builds: its attention layers."""
    return set(LAYER_CLASSES) | {CSP_ATTENTION}


def _number(v, bound) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= bound


def _index(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_LAYERS <= v < MAX_LAYERS


def _literal(v, strings, depth=0) -> bool:
    if depth > 4:
        return False
    if v is None or isinstance(v, bool):
        return True
    if isinstance(v, (int, float)):
        return abs(v) <= MAX_INT_ARG
    if isinstance(v, str):
        return v in strings or _numeric(v)
    if isinstance(v, list):
        return len(v) <= 32 and all(_literal(x, strings, depth + 1) for x in v)
    return False


def _numeric(s: str) -> bool:
    try:
        return abs(float(s)) <= MAX_INT_ARG
    except ValueError:
        return False
