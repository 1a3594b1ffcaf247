"""Rebuild a YOLO model from a checkpoint's records, mapping other code bases' attention layers.

The architecture is the YAML dict the model record stores (ultralytics 8.x and its forks). It is
checked before anything is built (``yaml_layers.check_yaml``: the layer names of one explicit
table, plain literal arguments of bounded size, the known activations), and every class the
record names must be one this project knows. Rows whose layer is an attention class from another
code base are rewritten into this project's module (``foreign_layers``), the tensors renamed to
match; the layer's ``loaded_as`` says what it was loaded as.
"""
from __future__ import annotations

import functools
import types

from torch import nn

from attention_lens.attention import CHECKPOINT_CLASSES, CHECKPOINT_MODULE, LAYER_CLASSES, LEGACY_CHECKPOINT_MODULES
from attention_lens.modeling.built_in import adopt_built_in_attention
from attention_lens.modeling.checkpoints import CheckpointError, PickledObject, copy_weights, module_paths, tensors_of
from attention_lens.modeling.foreign_layers import C3_EMA_POSITIONS, FOREIGN, known_names, map_c3_ema
from attention_lens.modeling.yaml_layers import check_yaml, our_rows, refused_rows


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
    unmapped = refused_rows(rows, our_rows())  # a foreign name whose layer the mapping did not rewrite
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
