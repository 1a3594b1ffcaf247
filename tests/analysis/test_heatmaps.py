"""Attention maps: true geometry, per-call capture, no effect on detections."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from attention_lens.analysis.attention_view import export, inspect, render
from attention_lens.views.channels import channel_figure
from attention_lens.analysis.heatmaps import normalize, to_original
from attention_lens.runtime.detect import detect
from attention_lens.attention import CBAM
from attention_lens.modeling.catalog import ModelStore, read_manifest


class KnownMapModel(nn.Module):
    """A stand-in detector whose only attention is a CBAM with a known spatial map.

    The input is average-pooled by 8 (stride 8), the channel gate is a constant 0.5, and the
    spatial gate is sigmoid(max over channels): bright where the image is bright.
    """

    def __init__(self):
        super().__init__()
        cbam = CBAM(3, reduction=1, kernel_size=1)
        with torch.no_grad():
            for p in [*cbam.fc1.parameters(), *cbam.fc2.parameters()]:
                p.zero_()
            cbam.spatial_conv.weight.copy_(torch.tensor([[[[8.0]], [[0.0]]]]))
        self.model = nn.Sequential(nn.AvgPool2d(8), cbam)
        self.names = {0: "thing"}
        self.stride = torch.tensor([32.0])
        self.eval()

    def forward(self, x):
        self.model(x)
        return torch.zeros(x.shape[0], 5, 10)  # no detections


@pytest.mark.parametrize("hw,block", [((270, 500), (100, 140, 300, 360)), ((500, 270), (380, 420, 40, 80)),
                                      ((333, 333), (10, 50, 280, 320))])
def test_hot_region_lands_on_the_bright_block_in_original_pixels(hw, block):
    h, w = hw
    y1, y2, x1, x2 = block
    image = np.zeros((h, w, 3), np.uint8)
    image[y1:y2, x1:x2] = 255
    ins = inspect(image, {"known": KnownMapModel()}, imgsz=320)
    (lm,) = ins.models[0].layers
    assert lm.stride == 8 and set(lm.gates) == {"channel", "spatial"}
    heat = normalize(to_original(lm.views["spatial"], ins.models[0].input_hw, (h, w)))
    assert heat.shape == (h, w)
    ys, xs = np.where(heat > 0.5)
    gain = min(320 / h, 320 / w)
    tolerance = 8 / gain  # one stride, in original pixels
    assert abs(ys.min() - y1) <= tolerance and abs(ys.max() - (y2 - 1)) <= tolerance
    assert abs(xs.min() - x1) <= tolerance and abs(xs.max() - (x2 - 1)) <= tolerance
    assert heat[(y1 + y2) // 2, (x1 + x2) // 2] > 0.9
    far = np.ones((h, w), bool)  # background at least one stride from the block and the image edges
    m = int(np.ceil(tolerance))
    far[max(0, y1 - m):y2 + m, max(0, x1 - m):x2 + m] = False
    far[:m], far[-m:], far[:, :m], far[:, -m:] = False, False, False, False
    assert heat[far].max() < 0.1


def test_to_original_matches_letterbox_math_on_a_padded_image():
    # 270x500 at 320: gain 0.64 -> 173x320 content, padded to 192 rows (9 on top).
    fmap = np.zeros((24, 40), np.float32)  # stride 8 over 192x320
    fmap[12, 20] = 1.0
    heat = to_original(fmap, (192, 320), (270, 500))
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    cy_lb, cx_lb = 12 * 8 + 4, 20 * 8 + 4  # cell centre in the letterboxed input
    assert abs(y - (cy_lb - 9.5) / 0.64) <= 8 / 0.64 and abs(x - cx_lb / 0.64) <= 8 / 0.64


@pytest.fixture(scope="module")
def store(tiny_weights):
    return ModelStore(read_manifest(tiny_weights))


def test_capture_does_not_change_detections(store, bccd_test_images):
    model = store.get("ema")
    image = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(bccd_test_images[0]).convert("RGB"))
    plain = detect(model, image, conf=0.001)
    hooked = detect(model, image, conf=0.001, capture=True)
    assert len(plain.boxes) > 0 and hooked.maps and not plain.maps
    np.testing.assert_array_equal(plain.boxes, hooked.boxes)
    np.testing.assert_array_equal(plain.scores, hooked.scores)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())  # removed after the call


def test_concurrent_calls_never_mix_maps(store, bccd_test_images):
    models = {"ema": store.get("ema"), "coordatt": store.get("coordatt")}
    images = bccd_test_images[:4]
    alone = {str(p): inspect(p, models) for p in images}
    results, errors = {}, []

    def worker(path, k):
        try:
            results[(str(path), k)] = inspect(path, models)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(p, k)) for k in range(3) for p in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == len(threads)
    for (path, _), ins in results.items():
        for mm, ref in zip(ins.models, alone[path].models):
            assert [lm.layer for lm in mm.layers] == [lm.layer for lm in ref.layers] and mm.layers
            for lm, rl in zip(mm.layers, ref.layers):
                for kind in rl.gates:
                    np.testing.assert_array_equal(lm.gates[kind], rl.gates[kind])


def test_views_downloads_and_the_plain_model_notice(store, bccd_test_images, tmp_path):
    import zipfile

    models = {n: store.get(n) for n in ("baseline", "ema", "coordatt")}
    ins = inspect(bccd_test_images[0], models, {"ema": "neck_outputs"})
    table = ins.table()
    assert table[table.model == "baseline"]["module"].tolist() == ["no attention layers"]
    assert set(table[table.model == "ema"]["stride"]) == {8, 16, 32}
    items = render(ins, 0.6, "turbo")
    captions = [c for _, c in items]
    assert any("spatial_groups" in c for c in captions) and any("group maps" in c for c in captions)
    assert any("axis_h x axis_w" in c for c in captions)
    h, w = ins.image.shape[:2]
    assert all(im.shape == (h, w, 3) for im, c in items if "group maps" not in c)
    zipped, npz = export(ins, items, tmp_path)
    assert len(zipfile.ZipFile(zipped).namelist()) == len(items)
    data = np.load(npz)
    assert "ema/layer16/spatial_groups" in data and "coordatt/layer24/axis_w" in data
    assert channel_figure(ins) is None  # EMA and CoordAtt have no channel gate
    # The download step asks for the same overlays as the gallery: drawn once per look.
    assert render(ins, 0.6, "turbo") is items
    fainter = render(ins, 0.2, "turbo")
    assert fainter is not items and not np.array_equal(fainter[0][0], items[0][0])


def test_plain_model_gets_labelled_layercam_that_sits_on_its_detections():
    from pathlib import Path

    from attention_lens.analysis.layercam import layercam

    weights = Path(__file__).resolve().parents[2] / "weights"
    shipped = ModelStore(read_manifest(weights))
    if not shipped.baseline_name():
        pytest.skip("no shipped baseline")
    model = shipped.get(shipped.baseline_name())
    image = __import__("attention_lens.analysis.images", fromlist=["load_image"]).load_image(
        weights.parent / "assets" / "examples" / "synthetic_smear_1.jpg")
    det = detect(model, image)
    inside = np.zeros(image.shape[:2], bool)
    for x1, y1, x2, y2 in det.boxes.astype(int):
        inside[y1:y2, x1:x2] = True
    cams = layercam(model, image)
    assert [c["stride"] for c in cams] == [8, 16, 32] and len(det.boxes) > 5
    p3 = cams[0]["map"]
    assert p3.shape == image.shape[:2] and p3[inside].mean() > 5 * p3[~inside].mean()
    assert all(p.grad is None for p in model.parameters())  # nothing accumulates on the shared model
    ins = inspect(image, {"plain": model})
    captions = [c for _, c in render(ins)]
    assert captions and all("LayerCAM (gradients, not attention)" in c for c in captions)


def test_concurrent_calls_with_different_image_shapes_keep_their_own_boxes(store, bccd_test_images):
    """The Detect head caches anchors per input shape on the shared module: calls must not mix them."""
    from PIL import Image

    model = store.get("ema")
    base = np.asarray(Image.open(bccd_test_images[0]).convert("RGB"))
    images = [base, np.ascontiguousarray(base[:, :400]), np.ascontiguousarray(base[:300]), base[::2, ::2].copy()]
    alone = [detect(model, im, conf=0.001) for im in images]
    results, errors = {}, []

    def worker(k, rep):
        try:
            results[(k, rep)] = detect(model, images[k], conf=0.001)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k, rep)) for rep in range(4) for k in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (k, _), det in results.items():
        np.testing.assert_array_equal(det.boxes, alone[k].boxes)


def test_ema_group_tiles_share_one_scale_and_carry_their_ranges():
    from attention_lens.analysis.heatmaps import group_grid

    weak, strong = np.full((4, 4), 0.2), np.full((4, 4), 0.8)
    grid = group_grid(np.stack([weak, strong]), tile=20, columns=2)
    # one scale over the layer: the constant 0.2 group is the bottom colour, the 0.8 group the top
    # (stretched on their own, both constants would get the same colour)
    assert not np.array_equal(grid[5, 5], grid[5, 62 + 5])
    blank = group_grid(np.stack([weak, weak]), tile=20, columns=2)
    assert np.array_equal(blank[5, 5], blank[5, 62 + 5])
    assert (grid[20:, :] < 200).any()  # the captions under the tiles


def test_the_letterbox_gain_maps_input_pixels_to_image_pixels():
    """A 480x640 image letterboxed to 256x320 was halved: 32 input pixels are 64 image pixels."""
    from attention_lens.analysis.attention_view import Inspection, ModelMaps

    mm = ModelMaps("m", None, np.zeros((0, 4)), np.zeros(0), [], (256, 320))
    assert Inspection(np.zeros((48, 64, 3), np.uint8), [mm], original_hw=(480, 640)).gain(mm) == 0.5
    assert Inspection(np.zeros((48, 64, 3), np.uint8), [mm]).gain(mm) == 1.0  # size unknown: no scaling


def test_layers_sharing_an_index_are_numbered_in_model_order():
    from types import SimpleNamespace

    from attention_lens.analysis.heatmaps import layer_labels

    layers = [SimpleNamespace(layer=6, module="AreaAttention"), SimpleNamespace(layer=6, module="AreaAttention"),
              SimpleNamespace(layer=8, module="SE"), SimpleNamespace(layer=6, module="AreaAttention")]
    assert layer_labels(layers) == ["L6 AreaAttention", "L6 AreaAttention #2", "L8 SE", "L6 AreaAttention #3"]


def test_the_matrix_the_gallery_and_the_data_set_scores_name_yolo12s_layers_alike(tmp_path):
    """Issue 35: the Evaluate table said "L6 AreaAttention #2" where the matrix said "L6 AreaAttention"."""
    from ultralytics_checkpoints import ultralytics_checkpoint

    from attention_lens.analysis.localisation import detect_and_score
    from attention_lens.modeling.load import load_model
    from attention_lens.views.attention_matrix import cells

    model = load_model(ultralytics_checkpoint(tmp_path, "yolo12n.yaml", nc=3))
    image = np.full((240, 320, 3), 120, np.uint8)
    image[60:180, 80:240] = 230
    ins = inspect(image, {"y12": model})
    matrix = [c.title for c in cells(ins)]
    gallery = {caption.split(" · ")[1] for _, caption in render(ins)}
    _, scores = detect_and_score(model, image, {"all": np.ones(1, bool)}, np.array([[0, 80, 60, 240, 180]]))
    assert matrix == list(scores) and set(matrix) == gallery
    assert "L6 AreaAttention #2" in matrix  # YOLO12's A2C2f holds several
