"""Variant generator: every base x attention x placement builds, runs, and is wired right."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from attention_lens.attention import ATTENTION_MODULES, create_attention
from attention_lens.modeling.models import build_model
from attention_lens.modeling.variants import PLACEMENTS, insert_after, make_variant, parse_params, to_yaml

BASES = ["yolov5n", "yolov8n", "yolo11n"]


def channels_out(model, indices):
    """Output channels of the given layers of a built model, read by forward hooks."""
    seen = {}
    def hook(i):
        def record(module, args, out):
            seen[i] = out.shape[1]
        return record

    hooks = [model.model[i].register_forward_hook(hook(i)) for i in indices]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    return seen


def attention_layers(model):
    return [m for m in model.model if type(m) in ATTENTION_MODULES.values()]


@pytest.fixture(scope="module")
def plain_models():
    return {b: build_model(make_variant(b, None, None, nc=3)) for b in BASES}


@pytest.mark.parametrize("placement", list(PLACEMENTS))
@pytest.mark.parametrize("attention", list(ATTENTION_MODULES))
@pytest.mark.parametrize("base", BASES)
def test_variant_builds_runs_and_adds_exactly_the_attention_params(base, attention, placement, plain_models):
    params = {"position": "shortcut"} if (placement == "in_csp" and base == "yolov5n") else {}
    model = build_model(make_variant(base, attention, placement, params, nc=3))
    model.eval()
    out = model(torch.zeros(2, 3, 96, 64))
    assert out[0].shape[:2] == (2, 4 + 3)
    plain = plain_models[base]
    added = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters())
    cls = ATTENTION_MODULES[attention]
    modules = [m for m in model.modules() if isinstance(m, cls)]
    assert modules
    if placement != "in_csp":
        # Channels are inferred from the plain model's anchors: rebuild each module standalone.
        layers = attention_layers(model)
        anchors = [m.f if m.f >= 0 else m.i - 1 for m in layers]
        # map variant anchor indices back to the plain model: the k-th attention follows k earlier insertions
        plain_idx = [a - sum(1 for other in layers if other.i < m.i) for a, m in zip(anchors, layers)]
        plain_channels = channels_out(plain, plain_idx)
        expected = sum(sum(p.numel() for p in create_attention(attention, plain_channels[j]).parameters())
                       for j in plain_idx)
        assert added == expected
    else:
        assert added == sum(sum(p.numel() for p in m.parameters()) for m in modules)


@pytest.mark.parametrize("base", ["yolov8s", "yolo11m", "yolov5s"])
def test_sample_at_larger_scales(base):
    for attention, placement in (("EMA", "neck_outputs"), ("CoordAtt", "backbone_outputs")):
        model = build_model(make_variant(base, attention, placement, nc=3)).eval()
        assert model(torch.zeros(1, 3, 64, 64))[0].shape[1] == 7


def test_neck_outputs_feed_detect_and_the_next_neck_layer():
    d = make_variant("yolov8n", "SE", "neck_outputs")
    rows = d["backbone"] + d["head"]
    se_rows = [i for i, r in enumerate(rows) if r[2] == "SE"]
    assert se_rows == [16, 20, 24]
    assert rows[-1][0] == se_rows and rows[-1][2] == "Detect"
    assert rows[17] == [-1, 1, "Conv", [256, 3, 2]]  # downsample reads the attended P3 (inline)
    assert rows[18][0] == [-1, 12] and rows[22][0] == [-1, 9]  # untouched references keep their layers


def test_backbone_outputs_branch_leaves_the_backbone_plain():
    d = make_variant("yolov8n", "CoordAtt", "backbone_outputs")
    rows = d["backbone"] + d["head"]
    names = [r[2] for r in rows]
    att = [i for i, n in enumerate(names) if n == "CoordAtt"]
    assert att == [5, 8, 12]  # after P3 (4), P4 (6 -> 7) and SPPF (9 -> 11)
    assert rows[6][0] == 4 and rows[9][0] == 7  # the backbone continues from the plain features
    concats = [r[0] for r in rows if r[2] == "Concat"]
    assert [-1, 8] in concats and [-1, 5] in concats and [-1, 12] in concats
    assert rows[13][0] == -1 and rows[12][0] == -1  # neck starts from the attended SPPF


def test_insert_after_renumbers_relative_and_absolute_references():
    rows = [[-1, 1, "A", []], [-1, 1, "B", []], [[-2, -1], 1, "C", []], [[0, 2], 1, "D", []]]
    out = insert_after(rows, nb=2, anchors=[0], new_row=[-1, 1, "X", []])
    assert [r[2] for r in out] == ["A", "X", "B", "C", "D"]
    assert out[3][0] == [1, -1] and out[4][0] == [1, 3]


def test_placements_and_params_are_validated():
    with pytest.raises(ValueError, match="unknown placement"):
        make_variant("yolov8n", "SE", "middle")
    with pytest.raises(ValueError, match="no parameter"):
        make_variant("yolov8n", "EMA", "neck_outputs", {"groups": 4})
    with pytest.raises(ValueError, match="only in C3"):
        make_variant("yolov8n", "EMA", "in_csp", {"position": "shortcut"})
    with pytest.raises(ValueError, match="unknown base"):
        make_variant("yolov9t", "EMA", "neck_outputs")
    assert parse_params(["factor=16", "layout=parallel"]) == {"factor": 16, "layout": "parallel"}


def test_in_csp_positions_match_the_seed_layouts():
    for position, wrapped in (("main", "cv1"), ("concat", "cv3"), ("shortcut", "cv2")):
        model = build_model(make_variant("yolov5n", "EMA", "in_csp", {"position": position}, nc=3))
        c3 = model.model[2]
        seq = getattr(c3, wrapped)
        assert isinstance(seq, torch.nn.Sequential)
        assert any(isinstance(m, ATTENTION_MODULES["EMA"]) for m in seq)


def test_cli_writes_yaml_that_plain_ultralytics_loads_after_one_import(tmp_path):
    out = tmp_path / "my-variant.yaml"
    r = subprocess.run([sys.executable, "-m", "attention_lens", "variant", "--base", "yolov8n", "--attention", "EMA",
                        "--placement", "neck_outputs", "--param", "factor=16", "-o", str(out)],
                       capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert r.returncode == 0, r.stderr
    assert "_attention_lens.EMA" in r.stdout and "Detect" in r.stdout
    text = out.read_text()
    assert "[-1, 1, EMA, [16]]" in text and "[[16, 20, 24], 1, Detect, [nc]]" in text
    code = ("import attention_lens.modeling.yolo\nfrom ultralytics import YOLO\nm = YOLO(%r)\n"
            "from attention_lens.attention import EMA\n"
            "print(sum(isinstance(x, EMA) and x.groups == 16 for x in m.model.modules()))") % str(out)
    r2 = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.strip().splitlines()[-1] == "3"


def test_cli_reports_bad_input_without_a_traceback():
    r = subprocess.run([sys.executable, "-m", "attention_lens", "variant", "--base", "yolov9", "--attention", "EMA"],
                       capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert r.returncode == 2 and "unknown base" in r.stderr and "Traceback" not in r.stderr


def test_to_yaml_round_trips():
    import yaml

    d = make_variant("yolo11n", "PolarizedSA", "backbone_end", {"layout": "parallel"})
    back = yaml.safe_load(to_yaml(d))
    assert back["backbone"] == d["backbone"] and back["head"] == d["head"]


@pytest.mark.parametrize("base", ["yolo12n", "yolo26n"])
def test_newer_bases_keep_their_head_and_their_own_attention(base, tmp_path):
    """yolo12 and yolo26 variants: each placement that exists there builds and adds exactly the
    attention's parameters; the written YAML keeps YOLO26's one-to-one head and single DFL bin (a
    variant that lost them would train another detector) and the base's self-attention blocks."""
    import yaml

    from ultralytics.nn.modules.block import A2C2f, C2PSA

    plain = build_model(make_variant(base, None, None, nc=3))
    for placement in PLACEMENTS:
        if base == "yolo12n" and placement == "before_sppf":
            with pytest.raises(ValueError, match="no SPPF"):
                make_variant(base, "EMA", placement)
            continue
        d = make_variant(base, "EMA", placement, nc=3)
        back = yaml.safe_load(to_yaml(d))
        model = build_model(back).eval()
        assert model(torch.zeros(1, 3, 96, 64))[0].shape[1] == 4 + 3
        head = model.model[-1]
        assert head.reg_max == (1 if base == "yolo26n" else 16)
        assert (getattr(head, "one2one_cv2", None) is not None) == (base == "yolo26n")
        blocks = {type(m) for m in model.modules()}
        assert (A2C2f in blocks) == (base == "yolo12n") and (C2PSA in blocks) == (base == "yolo26n")
        emas = [m for m in model.modules() if isinstance(m, ATTENTION_MODULES["EMA"])]
        added = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters())
        assert emas and added == sum(p.numel() for m in emas for p in m.parameters())
