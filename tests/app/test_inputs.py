"""What a request names: which models it resolves to, image sizes and budgets refused before loading."""
from __future__ import annotations

from pathlib import Path

import pytest

from attention_lens.app.errors import UserError
from attention_lens.app.inputs import resolve_models
from attention_lens.modeling.catalog import ModelStore, read_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zoo():
    store = ModelStore(read_manifest(ROOT / "weights"))
    if not {"yolov8n-baseline-s0", "yolov8n-ema-neck-s0", "yolov8n-cbam-neck-s0"} <= set(store.names):
        pytest.skip("the shipped zoo is not here")
    return store


def test_picked_models_come_in_catalogue_order_whatever_the_click_order(zoo):
    got = resolve_models(zoo, ["yolov8n-ema-neck-s0", "yolov8n-cbam-neck-s0", "yolov8n-baseline-s0",
                               "yolov8n-ema-neck-s0"], None)
    # The baseline row first, then placement and kind (CBAM before EMA): rows line up across views.
    assert list(got) == ["yolov8n-baseline-s0", "yolov8n-cbam-neck-s0", "yolov8n-ema-neck-s0"]


def test_an_unknown_name_is_refused_before_anything_loads(zoo):
    with pytest.raises(UserError, match="Unknown model"):
        resolve_models(zoo, ["yolov8n-baseline-s0", "../../etc/passwd"], None)


@pytest.mark.parametrize("size", [8192, 100_000, 16, -320, "320; rm", 320.5, None, True])
def test_every_view_refuses_an_image_size_outside_the_limits_before_loading_anything(zoo, size, monkeypatch):
    """/attention at 8192 px took 17 s and 4 GB (issue 31); every endpoint now checks first."""
    from attention_lens.app.evaluate_handlers import run_evaluate
    from attention_lens.app.explain_handlers import run_explain
    from attention_lens.app.attention_handlers import run_attention
    from attention_lens.app.compare_handlers import run_compare

    monkeypatch.setattr(zoo, "get", lambda name: pytest.fail(f"{name} was loaded for a refused request"))
    image = str(ROOT / "assets" / "examples" / "synthetic_smear_1.jpg")
    picked = ["yolov8n-baseline-s0", "yolov8n-ema-neck-s0"]
    calls = {
        "compare": lambda: run_compare(zoo, image, picked, [], 0.25, 0.7, size, None),
        "attention": lambda: run_attention(zoo, image, picked, "jet", 0.5, 0.25, size),
        "explain": lambda: run_explain(zoo, image, picked, [], "RBC @ 10,10,50,50", "Grad-CAM", ["P3"], size),
        "evaluate": lambda: run_evaluate(zoo, None, ROOT / "weights" / "evaluation", None, "test", picked, [], None,
                                         0.25, size, 100),
    }
    for name, call in calls.items():
        with pytest.raises(UserError, match="Image size must be a whole number of pixels from 32 to 1280") as e:
            call()
        assert "Traceback" not in str(e.value), name


def test_a_request_whose_activations_exceed_the_budget_is_refused_with_the_size_that_fits(zoo):
    from attention_lens.app.inputs import within_budget
    from attention_lens.modeling.cost import MAX_ACTIVATION_BYTES, ModelCost

    model = zoo.get("yolov8n-baseline-s0")
    # The shipped model fits at the largest size (its measured cost, about 0.5 KB a pixel).
    within_budget({"yolov8n-baseline-s0": model}, 1280)
    heavy = type("Heavy", (), {"cost": ModelCost(1, MAX_ACTIVATION_BYTES / 640 ** 2)})()  # the budget at 640
    within_budget({"heavy": heavy}, 640)
    with pytest.raises(UserError, match="heavy at 672 px would take .* pick 640 px or less"):
        within_budget({"heavy": heavy}, 672)


def test_models_loaded_on_first_use_are_announced_with_their_progress():
    """Issue 35: 30 s of loading with gradio's bar showing a 1.2 s estimate."""
    from pathlib import Path

    from attention_lens.app.inputs import resolve_models
    from attention_lens.modeling.catalog import ModelStore, read_manifest

    store = ModelStore(read_manifest(Path(__file__).resolve().parents[2] / "weights"))
    store.load(["yolov8n-baseline-s0"])
    heard = []
    picked = ["yolov8n-ema-neck-s0", "yolov8n-baseline-s0", "yolov8n-cbam-neck-s0"]
    resolve_models(store, picked, [], progress=lambda step, desc: heard.append((step, desc)))
    assert heard == [((0, 2), "Loading 2 model(s) on first use: yolov8n-cbam-neck-s0"),
                     ((1, 2), "Loading 2 model(s) on first use: yolov8n-ema-neck-s0")]
    heard.clear()
    resolve_models(store, picked, [], progress=lambda step, desc: heard.append((step, desc)))
    assert heard == []  # loaded now: nothing to announce
