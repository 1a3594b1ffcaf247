"""Attention maps: from captured gate outputs to heatmaps in original image pixels.

Each attention module's gates (see attention/gate.py) are read by per-call forward hooks
(inference.capture_gates). This module turns them into one 2-D map per layer and kind of view,
undoes the letterbox (scale and padding, via ultralytics' scale_masks) so the map and the
image share original pixel coordinates, and renders overlays.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from attention_lens.attention.self_attention import received
from attention_lens.runtime.capture import attention_layout

COLORMAPS = {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "inferno": cv2.COLORMAP_INFERNO,
             "viridis": cv2.COLORMAP_VIRIDIS, "magma": cv2.COLORMAP_MAGMA}
#: Which view is a layer's main map, and the kind of scale it shares, in order of preference.
#: A self-attention layer's main map: what each cell receives, averaged over queries and heads.
RECEIVED = "attention received (mean over queries and heads)"
MAIN_VIEWS = (("spatial", "spatial gate"),
              (RECEIVED, "self-attention received (1 = uniform)"),
              ("spatial_groups (mean over groups)", "EMA group gates (mean)"),
              ("axis_h x axis_w", "CoordAtt h x w gate"),
              ("channel-weighted activation", "channel-weighted activation"))
LAYERCAM_KIND = "LayerCAM (gradients, not attention)"
LEVEL_NAMES = {8: "P3", 16: "P4", 32: "P5", 4: "P2", 64: "P6"}

@dataclass
class LayerMaps:
    """Everything captured for one attention module in one call."""
    layer: int  # index in the model's layer list (the CSP block, for attention inside one)
    name: str  # qualified module name
    module: str  # class name (EMA, CoordAtt...)
    feature_hw: tuple[int, int]
    stride: int
    gates: dict = field(default_factory=dict)  # kind -> captured map (numpy, batch item 0)
    views: dict = field(default_factory=dict)  # view name -> 2-D map on the feature grid
    channel_weights: np.ndarray | None = None  # (c,) for channel gates
    profiles: dict = field(default_factory=dict)  # "h"/"w" -> 1-D profile (CoordAtt)
    group_maps: np.ndarray | None = None  # (g, h, w) for EMA; (heads, h, w) attention received
    loaded_as: str = ""  # for a layer loaded from another code base's class: which, and how it maps
    # Self-attention, per head: (mean attention distance in feature cells, entropy in nats, keys a
    # query sees), and
    # the size of its matrix if that was not kept for the query view (attention_view.inspect).
    head_stats: tuple | None = None
    matrix_dropped: str = ""


def layer_labels(layers) -> list[str]:
    """One name per attention layer of a model, the same in every view and in the stored scores:
    "L{layer index} {module}", numbered "#2", "#3"... in model order where one layer holds several
    (YOLO12's A2C2f holds 2-4 area attentions)."""
    seen: dict[str, int] = {}
    out = []
    for lm in layers:
        base = f"L{lm.layer} {lm.module}"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base} #{seen[base]}")
    return out


def layer_maps(model: torch.nn.Module, maps: dict, inputs: dict, input_hw: tuple[int, int], item: int = 0
               ) -> list[LayerMaps]:
    """Group captured gate outputs by attention module and derive the views of each, for batch
    item ``item`` of the captured forward (``Detections.item``)."""
    out = []
    for lay in attention_layout(model).layers:
        # A self-attention tap holds (batch x areas, ...): item k is its k-th run of ``areas``.
        areas = getattr(lay.module, "areas", 1)
        gates = {g.kind: maps[gname][item * areas:(item + 1) * areas] if g.kind == "self_attention"
                 else maps[gname][item] for gname, g in lay.gates if gname in maps}
        gates = {k: v.float().numpy() for k, v in gates.items()}
        x = inputs.get(lay.name)
        if not gates or x is None:
            continue
        h, w = x.shape[2:]
        lm = LayerMaps(lay.layer, lay.name, type(lay.module).__name__, (h, w), max(1, round(input_hw[0] / h)), gates,
                       loaded_as=getattr(lay.module, "loaded_as", ""))
        _derive_views(lm, x[item].float())
        out.append(lm)
    return out


def _derive_views(lm: LayerMaps, x: torch.Tensor) -> None:
    g = lm.gates
    if "spatial" in g:
        lm.views["spatial"] = g["spatial"][0]
    if "spatial_groups" in g:
        lm.group_maps = g["spatial_groups"]
        lm.views["spatial_groups (mean over groups)"] = g["spatial_groups"].mean(0)
    if "axis_h" in g and "axis_w" in g:
        lm.views["axis_h x axis_w"] = (g["axis_h"] * g["axis_w"]).mean(0)  # (c,h,1)*(c,1,w) -> (h,w)
        lm.profiles = {"h": g["axis_h"].mean(0)[:, 0], "w": g["axis_w"].mean(0)[0, :]}
    if "self_attention" in g:  # per head (as EMA's groups), and their mean as the main map
        heads = received(g["self_attention"], g["self_attention"].shape[0], lm.feature_hw)
        lm.group_maps = heads
        lm.views[RECEIVED] = heads.mean(0)
    if "channel" in g:
        weights = g["channel"].reshape(-1)
        lm.channel_weights = weights
        # The layer's input weighted by the channel gate: which pixels the up-weighted channels fire on.
        cam = torch.einsum("c,chw->hw", torch.from_numpy(weights), x).clamp_min(0).numpy()
        lm.views["channel-weighted activation"] = cam


def main_view(lm: LayerMaps) -> tuple[str | None, str | None]:
    """(view name, kind) of the layer's main map, or (None, None) when it has none."""
    return next(((v, k) for v, k in MAIN_VIEWS if v in lm.views), (None, None))


def to_original(feature_map: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int],
                stretched: bool = False) -> np.ndarray:
    """A map on the model's feature grid -> the same map in original image pixels.

    Each feature cell covers stride x stride letterboxed-input pixels; ultralytics' scale_masks
    then removes the letterbox padding and scale, exactly as scale_boxes does for boxes.
    ``stretched`` (RT-DETR's input): no padding, the input resized back to the image.
    """
    from ultralytics.utils.ops import scale_masks

    t = torch.as_tensor(np.ascontiguousarray(feature_map), dtype=torch.float32)[None, None]
    t = F.interpolate(t, size=tuple(input_hw), mode="bilinear", align_corners=False)
    if stretched:
        return F.interpolate(t, size=tuple(image_hw), mode="bilinear", align_corners=False)[0, 0].numpy()
    return scale_masks(t, tuple(image_hw))[0, 0].numpy()


def normalize(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return np.zeros_like(a, dtype=np.float32) if hi - lo < 1e-12 else ((a - lo) / (hi - lo)).astype(np.float32)


def overlay(image_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """The image with ``heat`` (same h, w; any range) blended over it through a colormap."""
    colored = cv2.applyColorMap((normalize(heat) * 255).astype(np.uint8), COLORMAPS.get(colormap, cv2.COLORMAP_JET))
    return cv2.addWeighted(image_rgb, 1 - alpha, colored[..., ::-1], alpha, 0)


def add_profiles(image_rgb: np.ndarray, profile_h: np.ndarray, profile_w: np.ndarray, input_hw, image_hw,
                 band: int | None = None, stretched: bool = False) -> np.ndarray:
    """CoordAtt's 1-D profiles as bars along the left (h) and top (w) edges, in original pixels."""
    h0, w0 = image_hw
    band = band or max(6, min(h0, w0) // 25)
    ph = normalize(to_original(profile_h[:, None] * np.ones((1, 4)), input_hw, image_hw, stretched).mean(1))
    pw = normalize(to_original(np.ones((4, 1)) * profile_w[None, :], input_hw, image_hw, stretched).mean(0))
    out = image_rgb.copy()
    left = (np.clip(ph, 0, 1)[:, None] * band).astype(int)
    top = (np.clip(pw, 0, 1)[None, :] * band).astype(int)
    cols = np.arange(band)[None, :]
    rows = np.arange(band)[:, None]
    out[:, :band][cols < left] = (255, 255, 255)
    out[:band, :][rows < top] = (255, 255, 255)
    return out


def group_grid(group_maps: np.ndarray, tile: int = 56, columns: int = 8, colormap: str = "jet") -> np.ndarray:
    """EMA's per-group maps as a labelled grid of heatmap tiles on one colour scale (the layer's
    min..max over all groups, so tiles compare), each tile captioned with its group index and
    the range of its own weights."""
    g = len(group_maps)
    rows = (g + columns - 1) // columns
    h, w = group_maps.shape[1:]
    th, tw = tile, max(1, round(tile * w / h))
    caption = 26  # two lines of small text under each tile
    cell_h, cell_w = th + caption, max(tw, 58) + 4
    grid = np.full((rows * cell_h, columns * cell_w, 3), 255, np.uint8)
    lo, hi = float(np.nanmin(group_maps)), float(np.nanmax(group_maps))
    scale = (group_maps - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(group_maps)
    for i, m in enumerate(scale):
        tile_img = cv2.resize((np.clip(m, 0, 1) * 255).astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST)
        colored = cv2.applyColorMap(tile_img, COLORMAPS.get(colormap, cv2.COLORMAP_JET))[..., ::-1]
        r, c = divmod(i, columns)
        y, x = r * cell_h, c * cell_w
        grid[y:y + th, x:x + tw] = colored
        own = group_maps[i]
        for k, text in enumerate((f"g{i}", f"{float(own.min()):.2f}-{float(own.max()):.2f}")):
            cv2.putText(grid, text, (x, y + th + 11 + 12 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (40, 40, 40), 1,
                        cv2.LINE_AA)
    return grid
