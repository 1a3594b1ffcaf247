"""Explain one detection, self-attention's side: where the feature cells inside the chosen box look.

Beside a CAM (which pixels made the box, from gradients), a detector with self-attention says
directly where the object's own cells gather from: for each self-attention layer, the attention
of the box's cells (those whose centres fall in it; the cell under its centre for a box smaller
than a cell), averaged over them and over heads, in image pixels; and how much of it stays on the
box (localisation.in_box_scores' ratio: 1 = no preference). From a forward's capture: its own
(``box_attention``), or one already run (``box_attention_from``: Explain's CAM forward records it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_lens.analysis.heatmaps import LEVEL_NAMES
from attention_lens.analysis.localisation import object_cells
from attention_lens.analysis.query_view import grid_to_image
from attention_lens.attention.self_attention import attended_from, in_box_attention


@dataclass
class BoxAttention:
    """One self-attention layer's attention from the cells of one box."""
    model: str
    layer: str  # "L10 SelfAttention (10.m.0.attn)"
    stride: int
    cells: int  # the box's cells the queries are
    heat: np.ndarray  # (h, w) display pixels: mean over the cells and heads, x keys seen (1 = uniform)
    kept: np.ndarray  # (heads,) attention kept on the box over what no preference keeps (1 = none)

    def caption(self) -> str:
        level = LEVEL_NAMES.get(self.stride, f"stride {self.stride}")
        return (f"{self.model} · {self.layer} · {level} · self-attention from the box's {self.cells} cell(s), mean "
                f"over heads · kept on the box {float(self.kept.mean()):.2f}x (1 = no preference; per head "
                + " ".join(f"{v:.2f}" for v in self.kept) + ")")


def box_attention(model, name: str, image_rgb: np.ndarray, box, *, imgsz: int = 320,
                  display_hw: tuple[int, int] | None = None) -> list[BoxAttention]:
    """Every self-attention layer's attention from the cells of ``box`` (original pixels), from a
    forward of its own."""
    from attention_lens.runtime.capture import Captured
    from attention_lens.runtime.detect import detect

    det = detect(model, image_rgb, imgsz=imgsz, capture=True)
    captured = Captured(det.maps, det.inputs, det.input_shape, det.stretched)
    return box_attention_from(model, name, captured, tuple(image_rgb.shape[:2]), box, display_hw)


def box_attention_from(model, name: str, captured, original_hw: tuple[int, int], box,
                       display_hw: tuple[int, int] | None = None) -> list[BoxAttention]:
    """``box_attention`` from a forward already captured (``runtime.capture.Captured``) on an image
    of ``original_hw``."""
    from attention_lens.analysis.heatmaps import layer_labels, layer_maps

    display_hw = tuple(display_hw or original_hw)
    gt = np.array([[0, *(float(v) for v in box)]])
    out = []
    layers = layer_maps(model, captured.maps, captured.inputs, captured.input_hw)
    for label, lm in zip(layer_labels(layers), layers):
        attn = lm.gates.get("self_attention")
        if attn is None:
            continue
        [cells] = object_cells(gt, captured.input_hw, original_hw, lm.stride, lm.feature_hw, captured.stretched)
        heads, _ = attended_from(attn, attn.shape[0], lm.feature_hw, cells)
        kept, uniform = in_box_attention(attn, attn.shape[0], cells)
        out.append(BoxAttention(name, f"{label} ({lm.name.removeprefix('model.')})", lm.stride,
                                len(np.unique(cells)),
                                grid_to_image(heads.mean(0), captured.input_hw, original_hw, display_hw,
                                              captured.stretched),
                                kept / uniform))
    return out
