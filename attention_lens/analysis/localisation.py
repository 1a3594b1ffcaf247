"""Does the attention fall on the objects? Scores of one map against ground-truth boxes.

Two numbers per map and per group of boxes (all of an image's objects, one class, one COCO size
bucket), both computed in the image's own frame (the letterbox undone):

- **energy ratio**: the share of the map's mass inside the union of the group's boxes, divided
  by the share of the image those boxes cover. 1.0 = no preference; 2.0 = twice the mass a
  uniform map would put there. The map is taken as it is on its feature grid (each cell a
  constant over its stride x stride input pixels), clipped at 0, nothing resized or smoothed.
- **pointing game** (Zhang et al., ECCV 2016, "Top-down neural attention by excitation
  backprop"): a hit when the map's strongest cell centre lies inside one of the group's boxes,
  with their 15 px tolerance in original pixels.

For a self-attention layer, a third number per head (``in_box``): for the queries inside each
object (the feature cells whose centres fall in its box; the cell under its centre for an object
smaller than a cell), the share of their attention that stays on the object's cells, divided by
the share a head with no preference would keep there (1.0 = no preference), averaged over objects.

Which map of a layer is scored is the Attention view's main map (``heatmaps.main_view``); a
model with no attention layer is scored on LayerCAM at its Detect inputs instead, labelled so.
Scores are per image (``score_map``) and averaged over images by ``summarise``.
"""
from __future__ import annotations

import numpy as np

from attention_lens.analysis.heatmaps import LEVEL_NAMES
from attention_lens.runtime.letterbox import input_cell, letterbox_geometry

#: Pointing-game tolerance in original image pixels (Zhang et al. 2016).
TOLERANCE_PX = 15.0


def groups_of(boxes: np.ndarray, classes: list[str], size_of) -> dict[str, np.ndarray]:
    """Group name -> indices of the image's boxes: "all", "class <name>", "size <bucket>"."""
    out = {"all": np.arange(len(boxes))} if len(boxes) else {}
    for k, name in enumerate(classes):
        idx = np.flatnonzero(boxes[:, 0] == k)
        if idx.size:
            out[f"class {name}"] = idx
    sizes = np.array([size_of((b[3] - b[1]) * (b[4] - b[2])) for b in boxes])
    for s in dict.fromkeys(sizes.tolist()):
        out[f"size {s}"] = np.flatnonzero(sizes == s)
    return out


def score_map(grid: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int], boxes: np.ndarray,
              groups: dict[str, np.ndarray], tolerance: float = TOLERANCE_PX, stretched: bool = False,
              geometry: tuple | None = None) -> dict[str, tuple[float, bool]]:
    """Group -> (energy ratio, pointing-game hit) of one map.

    ``grid``: the map on its feature grid over the letterboxed input of ``input_hw``;
    ``boxes``: (n, 5) class, x1, y1, x2, y2 in original pixels of an image of ``image_hw``.
    """
    return score_maps([grid], input_hw, image_hw, boxes, groups, tolerance, stretched, geometry)[0]


def score_maps(grids: list[np.ndarray], input_hw: tuple[int, int], image_hw: tuple[int, int], boxes: np.ndarray,
               groups: dict[str, np.ndarray], tolerance: float = TOLERANCE_PX, stretched: bool = False,
               geometry: tuple | None = None) -> list[dict[str, tuple[float, bool]]]:
    """``score_map`` of several maps of one input (a model's layers): the groups' box masks are
    drawn once for all of them. ``stretched``: the input is RT-DETR's stretch, not the predictor's
    letterbox; ``geometry``: (gain_x, gain_y, pad_x, pad_y) of any other input (the validator's:
    ``letterbox.val_geometry``)."""
    gain_x, gain_y, pad_x, pad_y = geometry or letterbox_geometry(input_hw, image_hw, stretched)
    new_w, new_h = round(image_hw[1] * gain_x), round(image_hw[0] * gain_y)
    # Boxes in the crop's pixels (the image inside the letterbox), rounded to whole pixels and clipped to it.
    b = np.column_stack([boxes[:, 1] * gain_x, boxes[:, 2] * gain_y, boxes[:, 3] * gain_x, boxes[:, 4] * gain_y])
    b = np.rint(b).astype(int)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, new_w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, new_h)
    masks = {}
    for name, idx in groups.items():
        mask = np.zeros((new_h, new_w), dtype=bool)
        for x1, y1, x2, y2 in b[idx]:
            mask[y1:y2, x1:x2] = True
        masks[name] = (mask, np.count_nonzero(mask) / mask.size)
    out = []
    for grid in grids:
        gh, gw = grid.shape
        sy, sx = input_hw[0] / gh, input_hw[1] / gw
        # The map at input-pixel resolution, cropped to the image (the padding is not the image).
        rows = np.minimum((np.arange(pad_y, pad_y + new_h) / sy).astype(int), gh - 1)
        cols = np.minimum((np.arange(pad_x, pad_x + new_w) / sx).astype(int), gw - 1)
        energy = np.clip(np.asarray(grid, dtype=np.float64), 0, None)[np.ix_(rows, cols)]
        total = energy.sum()
        # Pointing: the strongest cell of the grid among those that show the image, at its
        # centre, in original pixels.
        valid = np.zeros_like(grid, dtype=bool)
        valid[np.unique(rows)[:, None], np.unique(cols)[None, :]] = True
        r, c = np.unravel_index(np.argmax(np.where(valid, grid, -np.inf)), grid.shape)
        px = ((c + 0.5) * sx - pad_x) / gain_x
        py = ((r + 0.5) * sy - pad_y) / gain_y
        scores = {}
        for name, idx in groups.items():
            mask, area = masks[name]
            ratio = float(np.sum(energy, where=mask) / total / area) if total > 0 and area > 0 else float("nan")
            gt = boxes[idx]
            hit = bool(np.any((gt[:, 1] - tolerance <= px) & (px <= gt[:, 3] + tolerance)
                              & (gt[:, 2] - tolerance <= py) & (py <= gt[:, 4] + tolerance)))
            scores[name] = (ratio, hit)
        out.append(scores)
    return out


def object_cells(gt: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int], stride: int,
                 feature_hw: tuple[int, int], stretched: bool = False, geometry: tuple | None = None
                 ) -> list[np.ndarray]:
    """Flat feature-grid indices of each object's cells: the cells whose centres, carried back
    through the letterbox (or ``geometry``, as in ``score_maps``) into original pixels, lie inside
    its box; the cell under the box's centre where none does (an object smaller than a cell)."""
    geometry = geometry or letterbox_geometry(input_hw, image_hw, stretched)
    gain_x, gain_y, pad_x, pad_y = geometry
    h, w = feature_hw
    cx = ((np.arange(w) + 0.5) * stride - pad_x) / gain_x
    cy = ((np.arange(h) + 0.5) * stride - pad_y) / gain_y
    out = []
    for _, x1, y1, x2, y2 in np.asarray(gt, dtype=np.float64).reshape(-1, 5):
        cols = np.flatnonzero((cx >= x1) & (cx <= x2))
        rows = np.flatnonzero((cy >= y1) & (cy <= y2))
        if not len(cols) or not len(rows):
            row, col = input_cell(((x1 + x2) / 2, (y1 + y2) / 2), input_hw, image_hw, stride, feature_hw,
                                  geometry=geometry)
            cols, rows = np.array([col]), np.array([row])
        out.append((rows[:, None] * w + cols[None, :]).ravel())
    return out


def in_box_scores(attn: np.ndarray, feature_hw: tuple[int, int], stride: int, input_hw: tuple[int, int],
                  image_hw: tuple[int, int], gt: np.ndarray, groups: dict[str, np.ndarray], stretched: bool = False,
                  geometry: tuple | None = None) -> dict[str, list]:
    """Group -> [objects, [per-head mean in-box share]] of one self-attention layer on one image."""
    from attention_lens.attention.self_attention import in_box_attention

    areas = attn.shape[0]
    per_object = []
    for cells in object_cells(gt, input_hw, image_hw, stride, feature_hw, stretched, geometry):
        kept, uniform = in_box_attention(attn, areas, cells)
        per_object.append(kept / uniform)
    per_object = np.array(per_object)
    return {g: [int(len(idx)), [round(float(v), 4) for v in per_object[idx].mean(0)]] for g, idx in groups.items()}


def summarise(per_image: list[dict | None]) -> list[dict]:
    """Per-image scores (each: layer label -> {"kind", "stride", "groups": {group: [ratio, hit]}})
    -> one row per layer: for each group the mean energy ratio over the images that have it, the
    pointing-game hit rate and the number of images."""
    layers: dict[str, dict] = {}
    for scores in per_image:
        for label, s in (scores or {}).items():
            row = layers.setdefault(label, {"layer": label, "kind": s["kind"], "stride": s["stride"],
                                            "level": LEVEL_NAMES.get(s["stride"], f"stride {s['stride']}"),
                                            "_acc": {}, "_in_box": {}})
            for group, (objects, heads) in (s.get("in_box") or {}).items():
                acc = row["_in_box"].setdefault(group, [0, np.zeros(len(heads))])
                acc[0] += objects
                acc[1] = acc[1] + objects * np.asarray(heads, dtype=np.float64)
            for group, (ratio, hit) in s["groups"].items():
                acc = row["_acc"].setdefault(group, ([], []))
                if ratio == ratio:  # not NaN
                    acc[0].append(ratio)
                acc[1].append(bool(hit))
    out = []
    for row in layers.values():
        acc, in_box = row.pop("_acc"), row.pop("_in_box")
        row["groups"] = {g: {"energy ratio": float(np.mean(r)) if r else float("nan"),
                             "pointing game": float(np.mean(h)), "images": len(h)}
                         for g, (r, h) in sorted(acc.items(), key=lambda kv: _group_order(kv[0]))}
        for g, (objects, total) in in_box.items():  # self-attention: mean over the group's objects, per head
            if g in row["groups"] and objects:
                row["groups"][g]["in-box share per head"] = [round(float(v), 4) for v in total / objects]
                row["groups"][g]["objects"] = int(objects)
        out.append(row)
    return sorted(out, key=lambda r: (r["stride"], r["layer"]))


def _group_order(group: str) -> tuple:
    kind = group.split(" ", 1)[0]
    sizes = {"size small": 0, "size medium": 1, "size large": 2}
    return ({"all": 0, "class": 1, "size": 2}.get(kind, 3), sizes.get(group, 0), group)


def detect_and_score(model, image_rgb: np.ndarray, groups: dict[str, np.ndarray], gt: np.ndarray, *,
                     imgsz: int = 320, conf: float = 0.001, iou: float = 0.7, max_det: int = 300, x=None,
                     ratio_pad: tuple | None = None):
    """(detections, scores) from one forward: each attention layer's main map (or, for a model
    with none, LayerCAM at its Detect inputs) scored against the image's ground truth ``gt``
    ((n, 5) class, x1, y1, x2, y2) in ``groups``. Scores: layer label -> {"kind", "stride",
    "groups": {group: [energy ratio, hit]}}, or None for an image without objects (then the
    forward captures nothing). ``x``: the model's input, when the caller already has it (by
    default the predictor's, as the views show it); with ``ratio_pad`` it is the validator's
    (``letterbox.val_input``): the detections are the evaluation pass's and the maps are placed
    by that input's geometry."""
    from attention_lens.runtime.capture import attention_layout
    from attention_lens.runtime.detect import detect

    if not groups:
        return detect(model, image_rgb, conf=conf, iou=iou, imgsz=imgsz, max_det=max_det, x=x,
                      ratio_pad=ratio_pad), None
    if attention_layout(model).layers:
        det = detect(model, image_rgb, conf=conf, iou=iou, imgsz=imgsz, capture=True, max_det=max_det, x=x,
                     ratio_pad=ratio_pad)
        scores = captured_scores(model, det, image_rgb, groups, gt, ratio_pad)
        det.maps, det.inputs = {}, {}  # not kept: a split's worth of maps is large
        if scores is not None:
            return det, scores
    from attention_lens.runtime.letterbox import model_input

    x = model_input(model, image_rgb, imgsz) if x is None else x
    return _layercam_scores(model, [image_rgb], x, [ratio_pad], [groups], [gt], conf=conf, iou=iou, max_det=max_det)[0]


def detect_and_score_batch(model, images_rgb: list[np.ndarray], x, ratio_pads: list, groups: list[dict],
                           gts: list[np.ndarray], *, conf: float = 0.001, iou: float = 0.7, max_det: int = 300
                           ) -> list[tuple]:
    """``detect_and_score`` for several images of one validator input shape (``x``: (n, 3, h, w),
    ``ratio_pads`` each one's), in runs of as many images as the model's memory bound allows
    (``detect.runs``), each run's maps scored and let go before the next: for a model with
    attention layers, one forward a run (``detect_batch`` with ``capture``: on a GPU, ONNX Runtime's
    batched graph, or PyTorch on the CPU), its detections those of the plain pass; a model without,
    LayerCAM's forward and backward on PyTorch, its detections from that forward."""
    from attention_lens.runtime.capture import attention_layout
    from attention_lens.runtime.detect import detect_batch, runs

    if not attention_layout(model).layers:
        return _layercam_scores(model, images_rgb, x, ratio_pads, groups, gts, conf=conf, iou=iou, max_det=max_det)
    out = []
    for run in runs(model, x):
        dets = detect_batch(model, images_rgb[run], x[run], conf=conf, iou=iou, max_det=max_det,
                            ratio_pads=ratio_pads[run], capture=any(groups[run]))
        for k, det in zip(range(len(x))[run], dets):
            scores = captured_scores(model, det, images_rgb[k], groups[k], gts[k], ratio_pads[k]) if groups[k] else None
            if groups[k] and scores is None:  # no layer with a main map: LayerCAM, as detect_and_score falls back
                scores = _layercam_scores(model, images_rgb[k:k + 1], x[k:k + 1], ratio_pads[k:k + 1], groups[k:k + 1],
                                          gts[k:k + 1], conf=conf, iou=iou, max_det=max_det)[0][1]
            out.append((det, scores))
        for det in dets:
            det.maps, det.inputs = {}, {}  # not kept: a split's worth of maps is large
    return out


def captured_scores(model, det, image_rgb: np.ndarray, groups: dict[str, np.ndarray], gt: np.ndarray,
                    ratio_pad: tuple | None = None) -> dict | None:
    """The scores of the maps a capture recorded (``det.maps`` / ``det.inputs``, batch item
    ``det.item``), each layer's main map, and the in-box share of its self-attention; None where no
    layer has a main map."""
    from attention_lens.analysis.heatmaps import layer_labels, layer_maps, main_view

    layers = layer_maps(model, det.maps, det.inputs, det.input_shape, item=det.item)
    maps, taps = [], {}
    for label, lm in zip(layer_labels(layers), layers):
        view, kind = main_view(lm)
        if view:
            maps.append((label, kind, lm.stride, lm.views[view]))
            if "self_attention" in lm.gates:
                taps[label] = lm
    if not maps:
        return None
    return _scored(maps, taps, det, image_rgb, groups, gt, ratio_pad)


def _layercam_scores(model, images_rgb: list[np.ndarray], x, ratio_pads: list, groups: list[dict],
                     gts: list[np.ndarray], *, conf: float = 0.001, iou: float = 0.7, max_det: int = 300) -> list[tuple]:
    """(detections, scores or None for an image without ``groups``) of each image of ``x`` (one
    input shape; ``ratio_pads`` each image's, None for the predictor's letterbox): LayerCAM at the
    Detect inputs, one forward and backward a run of ``detect.runs`` (the
    backward keeps each image's activations after the first Detect input)."""
    from attention_lens.analysis.heatmaps import LAYERCAM_KIND
    from attention_lens.analysis.layercam import layercam_grids
    from attention_lens.runtime.detect import from_prediction, runs

    out = []
    for run in runs(model, x):
        grids, pred = layercam_grids(model, x[run])
        for k, one in enumerate(grids):
            i = run.start + k
            det = from_prediction(model, pred[k:k + 1], x[i:i + 1], images_rgb[i], conf=conf, iou=iou,
                                  max_det=max_det, ratio_pad=ratio_pads[i])
            maps = [(f"L{g['layer']} LayerCAM", LAYERCAM_KIND, g["stride"], g["grid"]) for g in one]
            out.append((det, _scored(maps, {}, det, images_rgb[i], groups[i], gts[i], ratio_pads[i])
                        if groups[i] else None))
    return out


def _scored(maps: list, taps: dict, det, image_rgb: np.ndarray, groups: dict, gt: np.ndarray,
            ratio_pad: tuple | None) -> dict:
    """The scores of (label, kind, stride, grid) maps over ``det``'s input (the validator's where
    ``ratio_pad`` is given), and the in-box share of the self-attention ``taps`` (label -> LayerMaps)."""
    from attention_lens.runtime.letterbox import val_geometry

    image_hw = tuple(image_rgb.shape[:2])
    geometry = val_geometry(ratio_pad) if ratio_pad is not None else None
    scored = score_maps([grid for *_, grid in maps], det.input_shape, image_hw, gt, groups,
                        stretched=det.stretched, geometry=geometry)
    scores = {label: {"kind": kind, "stride": int(stride), "groups": {g: [round(r, 4), h] for g, (r, h) in one.items()}}
              for (label, kind, stride, _), one in zip(maps, scored)}
    for label, lm in taps.items():
        scores[label]["in_box"] = in_box_scores(lm.gates["self_attention"], lm.feature_hw, lm.stride, det.input_shape,
                                                image_hw, gt, groups, det.stretched, geometry)
    return scores
