"""The catalogue: order by base and placement, the default selection, baselines of a selection."""
from __future__ import annotations

import json

from attention_lens.modeling.catalog import ModelStore, read_manifest

# (name, base, attention, placement, seed), shuffled the way a manifest grows over sessions.
ZOO = [
    ("v5-ema", "yolov5n", "EMA", "neck_outputs", 0),
    ("v8-cbam-s1", "yolov8n", "CBAM", "neck_outputs", 1),
    ("v8-base-s1", "yolov8n", None, None, 1),
    ("v8-se-bb", "yolov8n", "SE", "backbone_outputs", 0),
    ("v11-base", "yolo11n", None, None, 0),
    ("v8-coord", "yolov8n", "CoordAtt", "neck_outputs", 0),
    ("v5-base", "yolov5n", None, None, 0),
    ("v8-ema-s0", "yolov8n", "EMA", "neck_outputs", 0),
    ("v8-base-s0", "yolov8n", None, None, 0),
    ("v8-cbam-s0", "yolov8n", "CBAM", "neck_outputs", 0),
    ("v11-ema", "yolo11n", "EMA", "neck_outputs", 0),
]


def store_of(tmp_path, zoo=ZOO) -> ModelStore:
    models = [{"name": n, "base": b, "attention": a, "placement": p, "seed": s, "checkpoint": f"{n}/best.pt"}
              for n, b, a, p, s in zoo]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": models}))
    return ModelStore(read_manifest(tmp_path))


def test_names_group_by_base_then_baseline_then_placement(tmp_path):
    assert store_of(tmp_path).names == [
        "v8-base-s0", "v8-base-s1",                          # yolov8n: baselines by seed
        "v8-se-bb",                                          # backbone_outputs
        "v8-cbam-s0", "v8-cbam-s1", "v8-coord", "v8-ema-s0",  # neck_outputs, by kind then seed
        "v5-base", "v5-ema",                                 # yolov5nu
        "v11-base", "v11-ema"]                               # yolo11n


def test_labels_say_base_placement_kind_and_seed(tmp_path):
    entries = store_of(tmp_path).entries
    assert entries["v5-ema"].label == "yolov5nu · neck_outputs · EMA s0"
    assert entries["v8-base-s1"].label == "yolov8n · baseline s1"
    assert entries["v8-se-bb"].group == "yolov8n · backbone_outputs"


def test_default_is_one_baseline_and_two_kinds_of_its_base(tmp_path):
    # EMA and CBAM at their lowest seed; not two seeds of one kind, not another base's models.
    assert store_of(tmp_path).default_selection() == ["v8-base-s0", "v8-cbam-s0", "v8-ema-s0"]
    assert store_of(tmp_path, [z for z in ZOO if z[1] == "yolo11n"]).default_selection() == ["v11-base", "v11-ema"]
    no_baseline = [z for z in ZOO if z[2]][:4]
    assert len(store_of(tmp_path, no_baseline).default_selection()) == 3


def test_the_default_stays_on_the_bases_main_placement(tmp_path):
    # CBAM on the backbone outputs lists first (placements in model order) but is one run of a side
    # setting: the default keeps to the placement where the base has most of its variants.
    zoo = ZOO + [("v8-cbam-bb", "yolov8n", "CBAM", "backbone_outputs", 0)]
    assert store_of(tmp_path, zoo).default_selection() == ["v8-base-s0", "v8-cbam-s0", "v8-ema-s0"]


def test_a_selection_is_compared_with_the_baseline_of_its_own_base(tmp_path):
    store = store_of(tmp_path)
    assert store.baseline_name(["v8-base-s0", "v5-base", "v5-ema"]) == "v5-base"
    assert store.baseline_name(["v11-ema", "v11-base", "v8-base-s1"]) == "v11-base"
    assert store.baseline_name(["v8-ema-s0", "v8-base-s1", "v5-base"]) == "v8-base-s1"
    assert store.baseline_name(["v8-ema-s0", "v11-ema"]) is None  # no baseline picked: none invented
    assert store.baseline_name() == "v8-base-s0"
    # A tie between bases goes to the first base in catalogue order, every time (not set order).
    assert store.baseline_name(["v5-ema", "v5-base", "v11-ema", "v11-base"]) == "v5-base"


def test_models_load_on_first_use_only(tmp_path):
    store = store_of(tmp_path)
    assert store.loaded == []  # reading the manifest opens no checkpoint


def test_seeds_of_one_kind_share_a_group_and_uploads_have_none(tmp_path):
    groups = store_of(tmp_path).seed_groups(["v8-cbam-s0", "v8-cbam-s1", "v8-base-s0", "v8-base-s1", "v5-ema",
                                             "my-upload"])
    assert groups["v8-cbam-s0"] == groups["v8-cbam-s1"] != groups["v8-base-s0"] == groups["v8-base-s1"]
    assert groups["v5-ema"] != groups["v8-cbam-s0"] and "my-upload" not in groups
