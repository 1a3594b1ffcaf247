"""Ultralytics integration: YAML rows without channel counts, idempotent registration."""
from __future__ import annotations

import pytest
import torch

from attention_lens.attention import EMA, SE, CoordAtt
from attention_lens.modeling.integration import register
from attention_lens.modeling.models import build_model


def yaml_with(rows_after_sppf, scale="n"):
    from attention_lens.modeling.variants import load_base, parse_base

    d = load_base(parse_base(f"yolov8{scale}"))
    d["nc"] = 3
    d["backbone"] = d["backbone"] + rows_after_sppf
    return d


def test_register_is_idempotent_and_wraps_once():
    from ultralytics.nn import tasks

    register()
    first = tasks.parse_model
    register()
    assert tasks.parse_model is first


def test_register_refuses_to_shadow_an_ultralytics_name(monkeypatch):
    from ultralytics.nn import tasks

    monkeypatch.setitem(vars(tasks), "EMA", object())
    with pytest.raises(RuntimeError, match="refusing to shadow"):
        register()


def test_ultralytics_own_psa_is_untouched_by_polarized_sa():
    from ultralytics.nn import tasks
    from ultralytics.nn.modules.block import PSA

    register()
    assert vars(tasks)["PSA"] is PSA and "PolarizedSA" not in vars(tasks)


@pytest.mark.parametrize("scale", ["n", "s", "m"])
def test_one_row_serves_every_scale_with_inferred_channels(scale):
    model = build_model(yaml_with([[-1, 1, "EMA", [8]], [-1, 1, "SE", []]], scale))
    ema, se = model.model[10], model.model[11]
    sppf_out = model.model[9].cv2.conv.out_channels  # width-scaled by ultralytics
    assert isinstance(ema, EMA) and isinstance(se, SE)
    assert ema.conv1x1.in_channels * ema.groups == sppf_out
    assert se.fc1.in_features == sppf_out and se.fc2.out_features == sppf_out
    assert (ema.i, ema.f, se.i) == (10, -1, 11) and ema.np == sum(p.numel() for p in ema.parameters())


def test_layer_with_several_inputs_is_refused():
    with pytest.raises(ValueError, match="takes one input"):
        build_model(yaml_with([[[-1, 6], 1, "SE", []]]))


def test_bad_hyper_parameters_name_the_layer():
    with pytest.raises(ValueError, match="layer 10"):
        build_model(yaml_with([[-1, 1, "SE", [16, 3, 4]]]))


def test_repeated_attention_row_follows_the_depth_gain():
    # n=2 at depth 1.0 (scale l) gives two copies; at depth 0.33 (scale n) ultralytics rounds it to one.
    layer = build_model(yaml_with([[-1, 2, "CoordAtt", []]], "l")).model[10]
    assert isinstance(layer, torch.nn.Sequential) and len(layer) == 2 and all(isinstance(m, CoordAtt) for m in layer)
    assert isinstance(build_model(yaml_with([[-1, 2, "CoordAtt", []]], "n")).model[10], CoordAtt)
