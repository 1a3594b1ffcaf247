"""Where one image location looks: the query view of every self-attention layer.

A point of the image (original pixels) is carried through each model's letterbox onto the feature
grid of each of its self-attention layers; the captured softmax row of that cell (per head, and
their mean) is carried back into image pixels and drawn over the image, the query marked and, for
area attention, the area it may see outlined. Computed from an ``Inspection`` (the captured taps),
so a new point costs no forward.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from attention_lens.analysis.heatmaps import COLORMAPS, LEVEL_NAMES, LayerMaps, layer_labels
from attention_lens.attention.self_attention import attended
from attention_lens.runtime.letterbox import input_cell, letterbox_geometry

#: Width of one panel (the mean or one head) of a layer's query figure, display pixels.
PANEL_W = 300
#: The colour scale's top is at least this many times uniform attention.
UNIFORM_AT_MOST = 2
#: At most this many panels a row in a layer's figure (mean + heads).
PANELS_PER_ROW = 3


@dataclass(frozen=True)
class QueryCell:
    """Where an image point falls on one layer's feature grid."""
    row: int
    col: int
    centre_xy: tuple[float, float]  # the cell's centre, original image pixels
    area: int  # which area (of ``areas``) holds it; 0 without area attention
    areas: int


def feature_cell(point_xy: tuple[float, float], original_hw: tuple[int, int], input_hw: tuple[int, int],
                 stride: int, feature_hw: tuple[int, int], areas: int = 1, stretched: bool = False) -> QueryCell:
    """The feature cell an image point (original pixels) falls in: the point goes through the
    letterbox (scale, then centred padding; or RT-DETR's stretch) into input pixels, then down by
    the stride; a point outside the image is held at its edge."""
    h, w = feature_hw
    x = min(max(float(point_xy[0]), 0.0), original_hw[1] - 1e-3)
    y = min(max(float(point_xy[1]), 0.0), original_hw[0] - 1e-3)
    row, col = input_cell((x, y), input_hw, original_hw, stride, feature_hw, stretched)
    gx, gy, px, py = letterbox_geometry(input_hw, original_hw, stretched)
    centre = (((col + 0.5) * stride - px) / gx, ((row + 0.5) * stride - py) / gy)
    return QueryCell(row, col, centre, (row * w + col) // (h * w // max(areas, 1)), max(areas, 1))


def grid_to_image(feature_map: np.ndarray, input_hw: tuple[int, int], original_hw: tuple[int, int],
                  image_hw: tuple[int, int], stretched: bool = False) -> np.ndarray:
    """A feature-grid map in image pixels with its cells kept sharp (nearest): each cell covers
    stride x stride input pixels; the letterbox padding is cut off and the rest scaled to
    ``image_hw`` (the shown copy of an image of ``original_hw``)."""
    ih, iw = input_hw
    fh, fw = feature_map.shape
    full = cv2.resize(np.ascontiguousarray(feature_map, dtype=np.float32), (iw, ih), interpolation=cv2.INTER_NEAREST)
    gx, gy, px, py = letterbox_geometry(input_hw, original_hw, stretched)
    new_w, new_h = round(original_hw[1] * gx), round(original_hw[0] * gy)
    inside = full[py:py + new_h, px:px + new_w]
    return cv2.resize(inside, (image_hw[1], image_hw[0]), interpolation=cv2.INTER_NEAREST)


@dataclass
class LayerQuery:
    """One self-attention layer's answer to one query: where that cell looks."""
    model: str
    layer: LayerMaps
    label: str  # heatmaps.layer_labels: the layer's name in every view
    input_hw: tuple[int, int]  # the model's letterboxed input
    cell: QueryCell
    heads: np.ndarray  # (heads, h, w): attention x keys seen (1 = uniform), 0 outside the area
    area_mask: np.ndarray  # (h, w) bool: the cells the query may attend to
    stretched: bool = False  # the input is RT-DETR's stretch of the image, not a letterbox

    @property
    def scale_top(self) -> float:
        """The top of the layer's colour scale: its largest value, at least twice uniform, so a
        head with no preference (1 everywhere) reads as such, not as the hottest colour."""
        return max(float(self.heads.max()), UNIFORM_AT_MOST * 1.0)

    @property
    def mean(self) -> np.ndarray:
        return self.heads.mean(0)

    def caption(self) -> str:
        return " · ".join(self.caption_lines())

    def caption_lines(self) -> tuple[str, str]:
        """(which model and layer, where the query sits and the colour scale's top)."""
        level = LEVEL_NAMES.get(self.layer.stride, f"stride {self.layer.stride}")
        where = f"cell ({self.cell.row}, {self.cell.col}) of {self.layer.feature_hw[0]}x{self.layer.feature_hw[1]}"
        if self.cell.areas > 1:
            where += f", area {self.cell.area + 1} of {self.cell.areas}"
        block = self.layer.name.removeprefix("model.")  # several sit in one layer (YOLO12's A2C2f: 2-4)
        return (f"{self.model} · {self.label} ({block}) · {level}",
                f"query {where} · colour scale 0-{self.scale_top:.1f} x uniform (largest {float(self.heads.max()):.1f})")


def self_attention_layers(ins) -> list[tuple]:
    """(model maps, layer, its label) of every captured self-attention layer, in model order."""
    return [(mm, lm, label) for mm in ins.models
            for label, lm in zip(layer_labels(mm.layers), mm.layers) if "self_attention" in lm.gates]


def default_point(ins) -> tuple[float, float]:
    """Original pixels of the centre of the most confident detection of a model with
    self-attention (of any model where none has it); the image's centre where nobody detects."""
    scale = ins.image.shape[1] / ins.original_hw[1] if all(ins.original_hw) else 1.0
    with_attention = [mm for mm in ins.models if any("self_attention" in lm.gates for lm in mm.layers)]
    best = None
    for mm in with_attention or ins.models:
        if len(mm.scores):
            i = int(np.argmax(mm.scores))
            if best is None or mm.scores[i] > best[0]:
                best = (float(mm.scores[i]), mm.boxes[i])
    if best is None:
        return ins.original_hw[1] / 2, ins.original_hw[0] / 2
    x1, y1, x2, y2 = (float(v) / scale for v in best[1][:4])
    return (x1 + x2) / 2, (y1 + y2) / 2


def query(ins, point_xy: tuple[float, float]) -> list[LayerQuery]:
    """Every self-attention layer's attention from the cell under ``point_xy`` (original pixels)."""
    out = []
    for mm, lm, label in self_attention_layers(ins):
        attn = lm.gates["self_attention"]
        areas = attn.shape[0]
        cell = feature_cell(point_xy, ins.original_hw, mm.input_hw, lm.stride, lm.feature_hw, areas, mm.stretched)
        heads, mask = attended(attn, areas, lm.feature_hw, (cell.row, cell.col))
        out.append(LayerQuery(mm.model, lm, label, mm.input_hw, cell, heads, mask, mm.stretched))
    return out


def render_queries(ins, answers: list[LayerQuery], colormap: str = "jet", alpha: float = 0.55
                   ) -> list[tuple[np.ndarray, str]]:
    """One figure per layer: the mean over heads and each head, over the image on one colour scale
    (0 to the layer's largest value), the query marked, the area outlined."""
    items = []
    h0, w0 = ins.image.shape[:2]
    pw = min(PANEL_W, w0)
    ph = max(1, round(h0 * pw / w0))
    base = cv2.resize(ins.image, (pw, ph), interpolation=cv2.INTER_AREA)  # the same under every layer
    for lq in answers:
        mm_input = lq.input_hw
        top = lq.scale_top
        area = grid_to_image(lq.area_mask.astype(np.float32), mm_input, ins.original_hw, (ph, pw), lq.stretched) > 0.5
        scale = pw / ins.original_hw[1]
        qx, qy = lq.cell.centre_xy[0] * scale, lq.cell.centre_xy[1] * scale
        cell_px = lq.layer.stride * scale / max(letterbox_geometry(mm_input, ins.original_hw, lq.stretched)[0], 1e-9)
        maps = [("mean of heads", lq.mean)] + [(f"head {i}", m) for i, m in enumerate(lq.heads)]
        panels = [_panel(base, grid_to_image(m, mm_input, ins.original_hw, (ph, pw), lq.stretched) / top, title, area,
                         (qx, qy), cell_px, colormap, alpha, lq.cell.areas > 1) for title, m in maps]
        items.append((_tile(panels), lq.caption()))
    return items


def query_figure(items: list[tuple[np.ndarray, str]], answers: list[LayerQuery]) -> np.ndarray:
    """The layers' figures stacked into one image, each under its two caption lines."""
    width = max(fig.shape[1] for fig, _ in items)
    parts = []
    for (fig, _), lq in zip(items, answers):
        head = np.full((40, width, 3), 255, np.uint8)
        for k, line in enumerate(lq.caption_lines()):
            cv2.putText(head, line, (4, 15 + 17 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
        pad = np.full((fig.shape[0], width - fig.shape[1], 3), 255, np.uint8)
        parts += [head, np.hstack([fig, pad]), np.full((10, width, 3), 255, np.uint8)]
    return np.vstack(parts)


def _panel(base, heat, title, area, q, cell_px, colormap, alpha, outline_area) -> np.ndarray:
    colored = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8),
                                COLORMAPS.get(colormap, cv2.COLORMAP_JET))[..., ::-1]
    im = cv2.addWeighted(base, 1 - alpha, colored, alpha, 0)
    if outline_area:  # what the query may see; the rest of the image is out of its reach
        im[~area] = (im[~area] * 0.45).astype(np.uint8)
        contours, _ = cv2.findContours(area.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(im, contours, -1, (255, 255, 255), 1)
    half = max(cell_px / 2, 2)
    x, y = q
    cv2.rectangle(im, (round(x - half), round(y - half)), (round(x + half), round(y + half)), (0, 0, 0), 3)
    cv2.rectangle(im, (round(x - half), round(y - half)), (round(x + half), round(y + half)), (255, 255, 255), 1)
    strip = np.full((18, im.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (30, 30, 30), 1, cv2.LINE_AA)
    return np.vstack([strip, im])


def _tile(panels: list[np.ndarray]) -> np.ndarray:
    h, w = panels[0].shape[:2]
    cols = min(PANELS_PER_ROW, len(panels))
    rows = -(-len(panels) // cols)
    grid = np.full((rows * (h + 4), cols * (w + 4), 3), 255, np.uint8)
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        grid[r * (h + 4):r * (h + 4) + h, c * (w + 4):c * (w + 4) + w] = p
    return grid


def marked(ins, point_xy: tuple[float, float]) -> np.ndarray:
    """The shown image with the query point marked (what the user clicks on)."""
    im = ins.image.copy()
    s = im.shape[1] / ins.original_hw[1]
    x, y = round(point_xy[0] * s), round(point_xy[1] * s)
    r = max(6, im.shape[1] // 80)
    for colour, width in (((0, 0, 0), 4), ((255, 255, 255), 2)):
        cv2.circle(im, (x, y), r, colour, width)
        cv2.line(im, (x - 2 * r, y), (x - r, y), colour, width)
        cv2.line(im, (x + r, y), (x + 2 * r, y), colour, width)
        cv2.line(im, (x, y - 2 * r), (x, y - r), colour, width)
        cv2.line(im, (x, y + r), (x, y + 2 * r), colour, width)
    return im
