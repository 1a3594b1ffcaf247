"""The Attention tab's computation: capture, list layers, render overlays, export.

Plain functions on plain data: ``inspect`` runs the models once with gate capture; ``render``
turns the captured maps into overlays (cheap, so opacity and colormap changes skip the model).
"""
from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from attention_lens.analysis.heatmaps import (
    LayerMaps,
    add_profiles,
    group_grid,
    layer_maps,
    overlay,
    to_original,
    layer_labels,
)
from attention_lens.analysis.images import display_copy, display_size, load_image
from attention_lens.attention.self_attention import head_statistics
from attention_lens.runtime.capture import attention_layout
from attention_lens.runtime.detect import detect
from attention_lens.runtime.letterbox import input_key, model_input
from attention_lens.analysis.layercam import LAYERCAM_BACKEND, layercam_and_detections
from attention_lens.analysis.render import class_colors, draw


@dataclass
class ModelMaps:
    model: str
    placement: str | None
    boxes: np.ndarray
    scores: np.ndarray
    classes: list[str]
    input_hw: tuple[int, int]
    layers: list[LayerMaps] = field(default_factory=list)
    layercam: list[dict] = field(default_factory=list)  # only for models with no attention layers
    backend: str = "pytorch"  # what ran the forward the maps came from
    stretched: bool = False  # its input was the image stretched (RT-DETR), not letterboxed


@dataclass
class Inspection:
    image: np.ndarray  # at display size (``display_copy``)
    models: list[ModelMaps]
    original_hw: tuple[int, int] = (0, 0)  # the image's own size, before the display copy
    # The latest render, keyed by (opacity, colormap): the gallery and the download files draw
    # the same overlays, so the second asks for them again at no cost.
    last_render: tuple | None = field(default=None, repr=False, compare=False)

    def gain(self, mm: ModelMaps) -> float:
        """Input pixels per image pixel for ``mm``'s forward: the letterbox's scale (the image was
        resized by it), so a length in input pixels / gain is a length in the image's own pixels.
        A stretched input has a gain per axis: their geometric mean (lengths in no one direction)."""
        if not all(self.original_hw):
            return 1.0
        gy, gx = mm.input_hw[0] / self.original_hw[0], mm.input_hw[1] / self.original_hw[1]
        return float(np.sqrt(gx * gy)) if mm.stretched else min(gx, gy)

    def table(self) -> pd.DataFrame:
        rows = []
        for mm in self.models:
            if not mm.layers:
                rows.append({"model": mm.model, "layer": None, "module": "no attention layers", "placement": None,
                             "stride": None, "feature map": None, "maps": "LayerCAM", "loaded from": None,
                             "backend": mm.backend})
            gain = self.gain(mm)
            for lm in mm.layers:
                rows.append({"model": mm.model, "layer": lm.layer, "module": lm.module, "placement": mm.placement,
                             "stride": lm.stride, "feature map": f"{lm.feature_hw[0]}x{lm.feature_hw[1]}",
                             "maps": ", ".join(sorted(lm.gates)), "loaded from": lm.loaded_as or "this project",
                             "heads: mean distance (image px) / entropy (nats)": _head_text(lm, gain),
                             "backend": mm.backend})
        return pd.DataFrame(rows)


def _head_text(lm: LayerMaps, gain: float) -> str | None:
    """Per head of a self-attention layer: how far it looks (image pixels) and how spread (nats)."""
    if lm.head_stats is None:
        return None
    cells, entropy, _ = lm.head_stats
    return " · ".join(f"h{i} {c * lm.stride / gain:.0f} px / {e:.2f}" for i, (c, e) in enumerate(zip(cells, entropy)))


def inspect(image, models: dict, placements: dict | None = None, *, imgsz: int = 320, conf: float = 0.25,
            iou: float = 0.7) -> Inspection:
    """Run each model once with its gates hooked; keep boxes and maps for rendering."""
    rgb = load_image(image)
    shown_hw = display_size(rgb.shape[:2])[0]
    out, inputs = [], {}  # one input per kind (letterbox per stride, or stretch), shared by the models
    for name, model in models.items():
        layers, cams = [], []
        if attention_layout(model).layers:
            key = input_key(model)
            if key not in inputs:
                inputs[key] = model_input(model, rgb, imgsz)
            det = detect(model, rgb, conf=conf, iou=iou, imgsz=imgsz, capture=True, x=inputs[key])
            layers = layer_maps(model, det.maps, det.inputs, det.input_shape)
        if not layers:  # no gates to hook: LayerCAM instead, and the detections from its forward
            cams, det = layercam_and_detections(model, rgb, imgsz, conf=conf, iou=iou, map_hw=shown_hw)
        out.append(ModelMaps(name, (placements or {}).get(name), det.boxes, det.scores, det.classes, det.input_shape,
                             layers, cams, det.backend if layers else LAYERCAM_BACKEND,
                             det.stretched))
        _keep_attention(out)  # after each model: at most the budget and one model's matrices at once
    return _at_display_size(Inspection(rgb, out, tuple(rgb.shape[:2])))


#: Self-attention matrices one inspection keeps for the query view (it is held per session between
#: events). They grow with the square of the pixels: yolo12n's eight layers hold ~29 MB at 640 and
#: ~470 MB at 1280 (modeling.cost.ModelCost.attention_bytes).
KEEP_ATTENTION_BYTES = 64 * 2**20


def _keep_attention(models: list[ModelMaps], budget: int = KEEP_ATTENTION_BYTES) -> None:
    """Per-head statistics of every self-attention layer from its whole matrix (done here, not in
    a data-set pass, which needs neither; once a layer); then the largest matrices are let go until
    the rest fit ``budget``, each such layer saying why (its received maps and statistics stay).
    Called after each model as well as after all, it lets go of the same matrices."""
    layers = [lm for mm in models for lm in mm.layers if "self_attention" in lm.gates]
    for lm in layers:
        if lm.head_stats is None:
            attn = lm.gates["self_attention"]
            lm.head_stats = (*head_statistics(attn, attn.shape[0], lm.feature_hw), attn.shape[-1])
    total = sum(lm.gates["self_attention"].nbytes for lm in layers)
    for lm in sorted(layers, key=lambda lm: lm.gates["self_attention"].nbytes, reverse=True):
        if total <= budget:
            break
        size = lm.gates.pop("self_attention").nbytes
        total -= size
        lm.matrix_dropped = f"{size / 2**20:.0f} MB"


def _at_display_size(ins: Inspection) -> Inspection:
    """Keep only what the views need: the image and boxes at display size (the inspection is held
    per session between events; gate maps are feature-sized, LayerCAM maps drawn at display size)."""
    view, s = display_copy(ins.image)
    if s == 1.0:
        return ins
    for mm in ins.models:
        mm.boxes = mm.boxes * s
    ins.image = view
    return ins


def render(ins: Inspection, alpha: float = 0.5, colormap: str = "jet") -> list[tuple[np.ndarray, str]]:
    """Overlays in original pixels with the detections drawn, grouped by layer position so that
    the same position sits side by side across models."""
    key = (float(alpha), colormap)
    if ins.last_render is not None and ins.last_render[0] == key:
        return ins.last_render[1]
    palette = class_colors(sorted({c for mm in ins.models for c in mm.classes}))
    items = []
    labels = {mm.model: layer_labels(mm.layers) for mm in ins.models}
    for position in range(max((len(mm.layers) for mm in ins.models), default=0)):
        for mm in ins.models:
            if position >= len(mm.layers):
                continue
            lm, label = mm.layers[position], labels[mm.model][position]
            for view, fmap in lm.views.items():
                heat = to_original(fmap, mm.input_hw, ins.image.shape[:2], mm.stretched)
                im = overlay(ins.image, heat, alpha, colormap)
                if lm.profiles:
                    im = add_profiles(im, lm.profiles["h"], lm.profiles["w"], mm.input_hw, ins.image.shape[:2],
                                      stretched=mm.stretched)
                im = draw(im, mm.boxes, mm.scores, mm.classes, palette)
                items.append((im, f"{mm.model} · {label} · {view} · stride {lm.stride}"))
            if lm.group_maps is not None:
                lo, hi = float(lm.group_maps.min()), float(lm.group_maps.max())
                items.append((group_grid(lm.group_maps, colormap=colormap),
                              f"{mm.model} · {label} · {len(lm.group_maps)} group maps on one "
                              f"scale ({lo:.2f}-{hi:.2f}), each group's own range under its tile"))
    for mm in ins.models:  # models without attention: LayerCAM, labelled as the different kind of map it is
        for cam in mm.layercam:
            im = draw(overlay(ins.image, cam["map"], alpha, colormap), mm.boxes, mm.scores, mm.classes, palette)
            items.append((im, f"{mm.model} · LayerCAM (gradients, not attention) · Detect input layer "
                              f"{cam['layer']} · stride {cam['stride']}"))
    ins.last_render = (key, items)
    return items


def no_attention_models(ins: Inspection) -> list[str]:
    return [mm.model for mm in ins.models if not mm.layers]


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed date: the same maps give the same bytes, so gradio's file cache
    (keyed by content) stores a repeated download once."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_array(z: zipfile.ZipFile, name: str, a: np.ndarray) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
    z.writestr(_entry(name + ".npy"), buf.getvalue())


def export(ins: Inspection, items: list[tuple[np.ndarray, str]], folder: str | Path | None = None) -> list[str]:
    """The overlays as a zip of PNGs and the raw maps as .npz; returns the two file paths."""
    import cv2

    folder = Path(folder or tempfile.mkdtemp(prefix="attention-lens-"))
    folder.mkdir(parents=True, exist_ok=True)
    png_zip = folder / "attention_overlays.zip"
    with zipfile.ZipFile(png_zip, "w") as z:
        for i, (im, caption) in enumerate(items):
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(im[..., ::-1]))
            if ok:
                safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in caption)[:100]
                z.writestr(_entry(f"{i:02d}_{safe}.png"), buf.tobytes())
    npz = folder / "attention_maps.npz"
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as z:  # the .npz layout np.load reads
        for mm in ins.models:
            for lm in mm.layers:
                for kind, a in lm.gates.items():
                    _write_array(z, f"{mm.model}/layer{lm.layer}/{kind}", a)
            for cam in mm.layercam:
                _write_array(z, f"{mm.model}/layer{cam['layer']}/layercam", cam["map"])
    return [str(png_zip), str(npz)]
