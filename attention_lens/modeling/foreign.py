"""Rebuild a YOLO model from a checkpoint's records, mapping other code bases' attention layers.

The architecture is the YAML dict the model record stores (ultralytics 8.x and its forks). It is
checked against explicit lists before anything is built: layer names ultralytics defines, a few
torch layers, this project's attention layers; plain literal arguments of bounded size; the
known activations. Rows whose layer is an attention class from another code base (a tutorial's
EMA, SE, PSA, ECA, CoordAtt pasted into a fork, at any module path; ultralytics' own CBAM) are
rewritten into this project's module with the hyper-parameters read from the tensors' shapes,
and the tensors renamed to match. Each mapping is exact (tests compare outputs with the original
classes); where the original differs from the paper the layer is loaded as what it is and the
layer's ``loaded_as`` says so.
"""
from __future__ import annotations

import copy
import functools
import types
from dataclasses import dataclass

import torch
from torch import nn

from attention_lens.attention import (
    CHECKPOINT_CLASSES,
    CHECKPOINT_MODULE,
    LAYER_CLASSES,
    LEGACY_CHECKPOINT_MODULES,
)
from attention_lens.modeling.built_in import adopt_built_in_attention
from attention_lens.modeling.checkpoints import (
    MAX_INT_ARG,
    MAX_LAYERS,
    MAX_MULTIPLE,
    MAX_REPEATS,
    CheckpointError,
    PickledObject,
    copy_weights,
    module_paths,
    tensors_of,
)
from attention_lens.modeling.integration import CSP_ATTENTION, CSP_POSITIONS
from attention_lens.modeling.yaml_layers import allowed_rows, refused_rows

#: Strings a row's arguments may hold (ultralytics resolves them; anything else is refused).
STRING_ARGS = {"nc", "anchors", "nearest", "bilinear", "None", "True", "False"}
#: The activations a YAML may set (ultralytics evaluates this string, so only these exact texts).
ACTIVATIONS = {"nn.SiLU()", "nn.ReLU()", "nn.ReLU6()", "nn.LeakyReLU(0.1)", "nn.Hardswish()", "nn.Mish()",
               "nn.GELU()", "nn.Identity()"}
#: YAML keys passed on to the builder; the rest (file names, comments) are dropped.
YAML_KEYS = {"nc", "scales", "scale", "depth_multiple", "width_multiple", "backbone", "head", "activation",
             "reg_max", "ch", "channels", "anchors", "end2end"}


@functools.cache
def ultralytics_layers() -> frozenset[str]:
    """Layer names ultralytics' YAML parser builds, for this version: its module classes and the
    blocks inside them (yolo11's C3k2 holds C3k, its C2PSA holds PSABlock; neither is a YAML row)."""
    from ultralytics.nn import modules, tasks

    spaces = [vars(tasks)] + [vars(m) for m in vars(modules).values() if isinstance(m, types.ModuleType)
                              and m.__name__.startswith("ultralytics.nn.modules.")]
    return frozenset(k for space in spaces for k, v in space.items()
                     if isinstance(v, type) and issubclass(v, nn.Module))


@functools.cache
def torch_layers() -> frozenset[str]:
    return frozenset(k for k, v in vars(nn).items() if isinstance(v, type) and issubclass(v, nn.Module))


@dataclass
class Mapped:
    """How one foreign layer becomes ours: the YAML row's name and args, and its tensors renamed."""

    name: str
    args: list
    tensors: dict[str, torch.Tensor]
    note: str
    keep_repeats: bool = False  # a CSP block: the row's repeat count stays


# ----------------------------------------------------------------------------- the mappers
def _keys(t, *names):
    return all(n in t for n in names)


def map_ema(layer: PickledObject, t: dict) -> Mapped | None:
    if not _keys(t, "conv1x1.weight", "conv3x3.weight", "gn.weight"):
        return None
    groups = layer.attr("groups")
    if not isinstance(groups, int) or groups < 1:
        return None
    return Mapped("EMA", [groups], dict(t), f"{layer.path} (EMA, {groups} groups)")


def map_se(layer: PickledObject, t: dict) -> Mapped | None:
    for a, b in (("l1", "l2"), ("fc.0", "fc.2"), ("fc1", "fc2"), ("excitation.0", "excitation.2")):
        w1, w2 = t.get(f"{a}.weight"), t.get(f"{b}.weight")
        if w1 is not None and w2 is not None and w1.dim() == 2 and w2.dim() == 2 and len(t) <= 4:
            hidden, c = w1.shape
            if tuple(w2.shape) != (c, hidden) or c // (c // hidden) != hidden:
                return None
            b1, b2 = t.get(f"{a}.bias"), t.get(f"{b}.bias")
            note = f"{layer.path} (SE, r={c // hidden})"
            if b1 is None and b2 is None:
                note += ": no biases in the original, loaded as zero biases (the same function)"
            return Mapped("SE", [c // hidden], {
                "fc1.weight": w1, "fc1.bias": b1 if b1 is not None else torch.zeros(hidden),
                "fc2.weight": w2, "fc2.bias": b2 if b2 is not None else torch.zeros(c)}, note)
    return None


def map_polarized(layer: PickledObject, t: dict) -> Mapped | None:
    names = ("ch_wv", "ch_wq", "ch_wz", "sp_wv", "sp_wq")
    if not all(f"{n}.weight" in t and f"{n}.bias" in t for n in names) or "ln.weight" not in t:
        return None
    layout = "parallel" if "parallel" in layer.name.lower() else "sequential"
    return Mapped("PolarizedSA", [layout], dict(t), f"{layer.path} (polarized self-attention, {layout})")


def map_eca(layer: PickledObject, t: dict) -> Mapped | None:
    w = t.get("conv.weight")
    if w is None or len(t) != 1 or w.dim() != 3 or w.shape[:2] != (1, 1):
        return None
    return Mapped("ECA", [int(w.shape[-1])], dict(t), f"{layer.path} (ECA, k={w.shape[-1]})")


def map_coordatt(layer: PickledObject, t: dict) -> Mapped | None:
    if not _keys(t, "conv1.weight", "conv1.bias", "bn1.weight", "conv_h.weight", "conv_w.weight"):
        return None
    mip, c = t["conv1.weight"].shape[:2]
    r = next((r for r in [32, *range(1, c + 1)] if max(8, c // r) == mip), None)
    if r is None:
        return None
    return Mapped("CoordAtt", [r], dict(t), f"{layer.path} (coordinate attention, r={r})")


def map_ultralytics_cbam(layer: PickledObject, t: dict) -> Mapped | None:
    w = t.get("spatial_attention.cv1.weight")
    if w is None or not _keys(t, "channel_attention.fc.weight", "channel_attention.fc.bias") or len(t) != 3:
        return None
    return Mapped("UltralyticsCBAM", [int(w.shape[-1])], dict(t),
                  f"{layer.path} (ultralytics' CBAM: mean-pooled channel gate, 1x1 conv; not the paper's)")


#: The EMA tutorial's C3 blocks with EMA inside -> (our CSP position, the wrapped conv).
C3_EMA_POSITIONS = {"C3_EMA1": ("main", "cv1"), "C3_EMA2": ("shortcut", "cv2"), "C3_EMA3": ("concat", "cv3")}


def map_c3_ema(layer: PickledObject, t: dict, row: list) -> Mapped | None:
    position, conv = C3_EMA_POSITIONS[layer.name]
    ema = {k[len("m1.0."):]: v for k, v in t.items() if k.startswith("m1.0.")}
    children = layer.children().get("m1")
    groups = (children.children().get("0") if children else None)
    groups = groups.attr("groups") if groups else None
    if not {"conv1x1.weight", "conv3x3.weight", "gn.weight"} <= set(ema) or not isinstance(groups, int):
        return None
    inner, outer = ("1", "0") if position == "main" else ("0", "1")  # main: Sequential(cv1, EMA); else (EMA, conv)
    renamed = {}
    for k, v in t.items():
        if k.startswith("m1.0."):
            renamed[f"{conv}.{inner}.{k[len('m1.0.'):]}"] = v
        elif k.startswith(f"{conv}."):
            renamed[f"{conv}.{outer}.{k[len(conv) + 1:]}"] = v
        else:
            renamed[k] = v
    return Mapped(CSP_ATTENTION, ["C3", list(row[3]), "EMA", [groups], position], renamed,
                  f"{layer.path} (C3 with EMA, {groups} groups, position {position})", keep_repeats=True)


#: Class names other code bases give their attention layers -> mapper (tried on the tensors).
FOREIGN = {
    "EMA": map_ema, "EMA_attention": map_ema,
    "SE": map_se, "SEAttention": map_se, "SELayer": map_se, "SEBlock": map_se,
    "PSA": map_polarized, "PolarizedSelfAttention": map_polarized,
    "SequentialPolarizedSelfAttention": map_polarized, "ParallelPolarizedSelfAttention": map_polarized,
    "ECA": map_eca, "ECAAttention": map_eca, "eca_layer": map_eca,
    "CoordAtt": map_coordatt, "CA": map_coordatt, "CoordAttention": map_coordatt,
    "CBAM": map_ultralytics_cbam,
}


def known_names() -> list[str]:
    return sorted(set(FOREIGN) | set(LAYER_CLASSES) | set(C3_EMA_POSITIONS))


# ----------------------------------------------------------------------------- the YAML
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
    # A row may name a layer of the table, or another code base's attention class that the
    # mapping below rewrites into ours (``rebuild_yolo`` checks the rows again after it).
    refused = refused_rows(rows, _ours() | set(FOREIGN) | set(C3_EMA_POSITIONS))
    if refused:
        i, name = refused[0]
        raise CheckpointError(f"{label}: layer {i} names {str(name)[:40]!r}, which is not a layer Attention Lens "
                              "builds; refused (nothing from the file was run)")
    strings = STRING_ARGS | allowed_rows(_ours()) | set(CSP_POSITIONS) | {"sequential", "parallel"}
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


def _ours() -> set[str]:
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


# ----------------------------------------------------------------------------- the model
def _our_class(path: str) -> bool:
    """A class path this project's checkpoints write (or earlier versions wrote) for its attention layers."""
    module, _, name = path.rpartition(".")
    return name in CHECKPOINT_CLASSES and (
        module == CHECKPOINT_MODULE or any(module == m or module.startswith(m + ".") for m in LEGACY_CHECKPOINT_MODULES))


def check_classes(record: PickledObject, label: str) -> None:
    """Every module class in the record must be one this project knows (by name); else refuse."""
    from ultralytics.nn import modules

    known = (ultralytics_layers() | set(modules.__all__) | torch_layers() | set(FOREIGN) | set(C3_EMA_POSITIONS)
             | {"DetectionModel", "Model", "RTDETRDetectionModel"}
             | {"NonDynamicallyQuantizableLinear"})  # torch's MultiheadAttention.out_proj (RT-DETR's AIFI)
    unknown = sorted(p for p in module_paths(record) if not (_our_class(p) or p.rsplit(".", 1)[-1] in known))
    if unknown:
        raise CheckpointError(
            f"{label}: refused, it uses classes Attention Lens does not know: {', '.join(unknown[:6])}. Known: "
            f"ultralytics' layers, torch layers, and the attention layers {', '.join(known_names())}. "
            "Nothing from the file was run.")


def rebuild_yolo(record: PickledObject, label: str) -> nn.Module:
    """This project's DetectionModel for the record, with the record's weights copied in."""
    from attention_lens.modeling.cost import on_meta
    from attention_lens.modeling.models import build_model, probe_model

    if record.name not in ("DetectionModel", "Model", "RTDETRDetectionModel"):
        raise CheckpointError(f"{label}: not a detection model (it holds a {record.name}); "
                              "Attention Lens compares detectors: YOLO with a Detect head, or RT-DETR.")
    check_classes(record, label)
    d = check_yaml(record.attr("yaml"), label)
    rows = d["backbone"] + d["head"]
    detr = rows[-1][2] == "RTDETRDecoder"
    if detr != (record.name == "RTDETRDetectionModel"):
        raise CheckpointError(f"{label}: a {record.name} whose YAML ends in {str(rows[-1][2])[:40]}; refused")
    seq = record.children().get("model")
    layers = seq.children() if seq is not None else {}
    if sorted(layers, key=lambda k: int(k) if k.isdigit() else -1) != [str(i) for i in range(len(rows))]:
        raise CheckpointError(f"{label}: its layers do not match its YAML ({len(layers)} layers, {len(rows)} rows)")
    tensors, notes = {}, {}
    for i, row in enumerate(rows):
        layer = layers[str(i)]
        t = tensors_of(layer)
        mapped = None
        if not _our_class(layer.path) and layer.name in C3_EMA_POSITIONS:
            mapped = map_c3_ema(layer, t, row)
            if mapped is None:
                raise CheckpointError(f"{label}: layer {i} ({layer.path}) has a layout Attention Lens cannot map")
        elif not _our_class(layer.path) and layer.name in FOREIGN:
            mapped = FOREIGN[layer.name](layer, t)
            if mapped is None and layer.name not in ultralytics_layers():
                raise CheckpointError(f"{label}: layer {i} ({layer.path}) has a layout Attention Lens cannot map "
                                      f"onto its {layer.name} (tensors: {sorted(t)[:6]})")
        if mapped is not None:  # ``rows`` holds the YAML's own row lists: rewrite this one in place
            row[:] = [row[0], row[1] if mapped.keep_repeats else 1, mapped.name, mapped.args]
            t, notes[i] = mapped.tensors, mapped.note
        tensors.update({f"model.{i}.{k}": v for k, v in t.items()})
    unmapped = refused_rows(rows, _ours())  # a foreign name whose layer the mapping did not rewrite
    if unmapped:
        raise CheckpointError(f"{label}: layer {unmapped[0][0]} ({str(unmapped[0][1])[:40]}) has a layout Attention "
                              "Lens cannot map")
    classic = record.path.startswith("models.") or "anchors" in d  # ultralytics/yolov5 v6-v7
    try:
        if classic:
            from attention_lens.modeling.yolov5_classic import build_yolov5

            model = build_yolov5(d)
        elif on_meta():  # the size probe: the layers alone (DetectionModel's init needs real values)
            model = probe_model(d)
        else:
            model = build_model(d, nc=d["nc"], detr=detr)
    except CheckpointError:
        raise
    except Exception as e:  # a row ultralytics itself rejects
        raise CheckpointError(f"{label}: its architecture does not build ({type(e).__name__}: {str(e)[:200]})") from None
    try:
        adopt_built_in_attention(model)  # before the weights: ours keep ultralytics' parameter names
    except ValueError as e:
        raise CheckpointError(f"{label}: {e}") from None
    attention_types = tuple(LAYER_CLASSES.values())
    for i, note in notes.items():
        for sub in model.model[i].modules():  # the layer itself, or the attention inside a CSP block
            if sub is model.model[i] or isinstance(sub, attention_types):
                sub.loaded_as = note
    copy_weights(model, tensors, label)
    _follow_head_mode(model)
    names = record.attr("names")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        model.names = {k: str(v) for k, v in names.items()}
    else:
        model.names = {i: str(i) for i in range(d["nc"])}
    model.load_notes = [f"layer {i}: {n}" for i, n in notes.items()]
    model.source_format = "yolov5 (anchor-based)" if classic else "ultralytics"
    model.base_name = yolo_base_name(model, d, classic)
    return model


def _follow_head_mode(model: nn.Module) -> None:
    """A head with a one-to-one branch (YOLOv10, YOLO26) decodes as ultralytics' predictor decodes
    it by default: its predictor selects the head with ``end2end = args.nms is False`` (nms
    unset: the one-to-many branch and NMS), whatever flag the file's head was saved with."""
    head = model.model[-1] if isinstance(getattr(model, "model", None), nn.Sequential) else None
    if head is not None and getattr(head, "one2one_cv2", None) is not None:
        head.end2end = False


def yolo_base_name(model: nn.Module, d: dict, classic: bool) -> str:
    """The family and scale a rebuilt model was built as: yolov5n (classic: by width), yolov8n, yolo11s..."""
    if classic:
        return "yolov5" + {0.25: "n", 0.5: "s", 0.75: "m", 1.0: "l", 1.25: "x"}.get(d.get("width_multiple"), "")
    types = {type(m).__name__ for m in model.modules()}
    scales = d.get("scales") or {}
    scale = d.get("scale") or (next(iter(scales)) if scales else "")
    if "RTDETRDecoder" in types:
        return f"rtdetr-{scale}" if scale else "rtdetr"
    if "v10Detect" in types:
        return f"yolov10{scale}"
    if "C3k2" in types and d.get("end2end") and d.get("reg_max") == 1:
        return f"yolo26{scale}"
    if "A2C2f" in types:
        return f"yolo12{scale}"
    if "C3k2" in types:
        return f"yolo11{scale}"
    if "C2f" in types:
        return f"yolov8{scale}"
    return f"yolov5{scale}u" if "C3" in types else "yolo"
