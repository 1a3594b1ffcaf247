"""A real browser (Debian's chromium, driven by Playwright) through all three tabs.

It uses the shipped zoo when weights/ holds a baseline and two attention models (else small
models trained in the session), on the project's own synthetic example image. Screenshots land
in test-artifacts/; the README's copies in docs/screenshots come from here.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from app_server import serve
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 300_000
VIEWPORT = {"width": 1440, "height": 900}  # the laptop screen the layout is made for



@pytest.fixture(autouse=True)
def chromium_installed():
    if not Path(CHROMIUM).exists():
        from conftest import missing

        missing("Debian chromium is not installed (apt-get install chromium)")


EXAMPLE = ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"


@pytest.fixture(scope="module")
def weights(request):
    from attention_lens.modeling.catalog import read_manifest

    shipped = read_manifest(ROOT / "weights")
    if sum(e.attention is None for e in shipped) and sum(e.attention is not None for e in shipped) >= 2:
        return ROOT / "weights"
    return request.getfixturevalue("tiny_weights")


@pytest.fixture(scope="module")
def picked(weights):
    """Labels of the baseline and two attention models, as the checkbox shows them."""
    from attention_lens.modeling.catalog import read_manifest

    entries = read_manifest(weights)
    base = next(e for e in entries if e.attention is None)
    return [base] + [e for e in entries if e.attention is not None][:2]


@pytest.fixture(scope="module")
def app_url(weights):
    with serve(weights) as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
            "--no-first-run", "--disable-component-update", "--disable-sync"])
        pg = browser.new_page(viewport=VIEWPORT)
        pg.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # a loaded CI machine: every wait as patient as the page's
        pg.goto(app_url)
        pg.get_by_text("Attention Lens").first.wait_for()
        yield pg
        browser.close()


def shot(page, name, full_page=True):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def in_viewport(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]


def overlapping_texts(plot) -> list[tuple[str, str]]:
    """Pairs of a plotly figure's annotations (titles, headers) whose drawn text boxes overlap."""
    boxes = plot.locator(".annotation-text").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return [e.textContent, r.left, r.top, r.right, r.bottom]; })")
    return [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[1] < b[3] - 1 and b[1] < a[3] - 1 and a[2] < b[4] - 1 and b[2] < a[4] - 1]


#: Class -> the box colour the Compare grid drew it in (filled by the Compare test, read by Evaluate's).
COMPARE_COLOURS: dict[str, str] = {}


def shape_colours(plot) -> dict[str, list[str]]:
    """Class -> the line colours of its boxes in a result grid: the grid draws each model's boxes as
    shapes in the order of the hover texts of its markers ("RBC 0.90", "ground truth RBC"; "missed
    RBC" for a reference box it missed, drawn grey), so the two lists pair up."""
    return plot.evaluate(
        "e => { const gd = e.closest('.js-plotly-plot') || e; const out = {};"
        " const texts = gd.data.filter(t => t.type === 'scatter' && t.text).flatMap(t => Array.from(t.text));"
        " (gd.layout.shapes || []).forEach((sh, i) => { const words = String(texts[i] || '').split(' ');"
        "   if (words[0] === 'missed' || !sh.line) return;"
        "   const last = words[words.length - 1], cls = isNaN(Number(last)) ? last : words[0];"
        "   (out[cls] = out[cls] || []).push(sh.line.color); });"
        " return out; }")


def set_models(page, panel: str, labels: list[str]) -> None:
    """Check exactly ``labels`` among the model checkboxes of the tab whose button is ``panel``."""
    column = page.locator(panel).locator("xpath=ancestor::div[contains(@class,'column')][1]")
    for box in column.get_by_role("checkbox").all():
        label = box.locator("xpath=..").inner_text().strip()
        want = label in labels
        if box.is_checked() != want:
            box.set_checked(want)


@pytest.fixture(scope="module")
def many(weights):
    """Up to seven models, baseline first: the layout must show them all at once."""
    from attention_lens.modeling.catalog import read_manifest

    entries = read_manifest(weights)
    return sorted(entries, key=lambda e: e.attention is not None)[:7]


def test_compare_tab_shows_every_model(page, many):
    page.mouse.wheel(0, -10_000)
    assert in_viewport(page.locator("#compare-button"))  # the run button needs no scrolling
    page.locator("#compare-image input[type=file]").set_input_files(str(EXAMPLE))
    set_models(page, "#compare-button", [e.label for e in many])
    page.locator("#compare-button").click()
    cells = page.locator("#compare-grid .js-plotly-plot image")
    cells.nth(len(many) - 1).wait_for(state="attached")
    page.locator("#compare-grid").scroll_into_view_if_needed()
    assert cells.count() == len(many) and all(in_viewport(cells.nth(i)) for i in range(len(many)))
    grid = page.locator("#compare-grid .js-plotly-plot")
    assert not overlapping_texts(grid)  # issue 35: titles collided across cells
    assert in_viewport(grid.locator(".legend"))  # the class legend beside the results, not below the fold
    colours = shape_colours(grid)
    assert colours and all(len(set(c)) == 1 for c in colours.values()), colours  # one colour per class
    COMPARE_COLOURS.update({k: v[0] for k, v in colours.items()})
    table = page.locator("#compare-table")
    for entry in many:
        expect(table).to_contain_text(entry.name)
    wrap = table.locator(".table-wrap, table").first  # issue 35: columns cut off at 1440 px
    assert wrap.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the per-model table is clipped"
    shot(page, "compare", full_page=False)  # what the user sees: every result at once


def test_a_new_pair_of_models_raises_no_false_error(page, many):
    """The slider's pickers hold the previous pair while a comparison of two other models lands."""
    set_models(page, "#compare-button", [e.label for e in many[-2:]])
    page.locator("#compare-button").click()
    expect(page.locator("#compare-grid .js-plotly-plot image")).to_have_count(2)  # the new grid has landed
    expect(page.locator("#compare-table")).not_to_contain_text(many[0].name)
    expect(page.locator(".toast-body.error")).to_have_count(0)


def test_clicking_a_box_explains_it_in_every_model(page, many):
    pick = page.locator("#explain-pick img")
    pick.wait_for()
    pick.scroll_into_view_if_needed()
    pick.click()  # the middle of the reference result: the box under the click, or the nearest
    shown = page.locator("#explain-gallery img")
    shown.nth(1).wait_for()
    assert shown.count() == 2  # the two models of the last comparison
    expect(page.locator("#explain-table")).to_contain_text("energy in box")
    expect(page.locator("#explain-detection input")).to_have_value(re.compile(r"^\w+ [\d.]+ at \("))  # picked
    shot(page, "explain")


def test_attention_tab_shows_a_matrix_with_shared_colour_bars(page, picked):
    page.get_by_role("tab", name="Attention").click()
    page.locator("#attention-image input[type=file]").set_input_files(str(EXAMPLE))
    set_models(page, "#attention-button", [e.label for e in picked])
    page.locator("#attention-button").click()
    matrix = page.locator("#attention-matrix .js-plotly-plot")
    matrix.locator(".colorbar").first.wait_for(state="attached")
    # one row per model: its title in the cells, and P3/P4/P5 column headers
    for entry in picked:
        expect(matrix.locator(".annotation-text").filter(has_text=entry.name).first).to_be_attached()
    expect(matrix.locator(".annotation-text").filter(has_text="P3 · stride 8")).to_have_count(1)
    assert not overlapping_texts(matrix)  # issue 35: row titles overprinted each other
    assert matrix.locator(".colorbar").count() >= 2  # LayerCAM for the baseline + the attention kinds
    # The background (a smaller copy of the image, stretched by dx, dy) fills its cell's plot area.
    cell, picture = matrix.locator(".bglayer rect.bg").first.bounding_box(), matrix.locator(
        ".imagelayer image").first.bounding_box()
    assert picture["width"] == pytest.approx(cell["width"], rel=0.02), (picture, cell)
    page.get_by_text("Channel gates (SE, ECA").click()  # folded by default
    page.locator("#attention-channels .js-plotly-plot").first.wait_for()
    page.locator("#attention-matrix").scroll_into_view_if_needed()
    shot(page, "attention", full_page=False)
    page.get_by_text("Layers, downloads and raw ranges").click()
    expect(page.locator("#attention-layers")).to_contain_text(picked[1].attention)


def test_clicking_the_image_shows_where_that_location_looks_in_yolo11_and_yolo26(page, weights, tmp_path_factory):
    """The query view (issue 33): a shipped yolo11n (C2PSA) and a yolo26n (C2PSA + attention in its
    last C3k2; the shipped one, else one written by ultralytics and uploaded); a click on the image
    lands on the pixel clicked, and every self-attention layer of both models answers."""
    from attention_lens.modeling.catalog import read_manifest
    from ultralytics_checkpoints import ultralytics_checkpoint

    entries = {e.name: e for e in read_manifest(weights)}
    if "yolo11n-baseline-s0" not in entries:
        pytest.skip("the shipped zoo is not here")
    labels = [entries["yolo11n-baseline-s0"].label]
    page.get_by_role("tab", name="Attention").click()
    page.locator("#attention-image input[type=file]").set_input_files(str(EXAMPLE))
    if "yolo26n-baseline-s0" in entries:
        labels.append(entries["yolo26n-baseline-s0"].label)
    else:
        upload = ultralytics_checkpoint(tmp_path_factory.mktemp("yolo26"), "yolo26n.yaml", nc=3)
        column = page.locator("#attention-button").locator("xpath=ancestor::div[contains(@class,'column')][1]")
        column.locator("input[type=file]").last.set_input_files(str(upload))
        expect(column.get_by_text(upload.name)).to_be_visible()
    set_models(page, "#attention-button", labels)
    note = page.locator("#attention-query-note")
    stale = note.inner_text()  # an earlier test's answer may still be there: wait for this run's
    page.locator("#attention-button").click()
    expect(note).not_to_have_text(stale, timeout=TIMEOUT_MS)
    expect(note).to_contain_text("3 self-attention layer(s)")  # yolo11n: 1; yolo26n: 2
    shown = page.locator("#attention-query-image img")
    # The marked image may still be arriving (decoding, or replacing the previous one) when the note
    # shows: measure only once it is loaded and its size held between two polls.
    page.wait_for_function(
        "e => { const r = e.getBoundingClientRect(); const k = [r.width, r.height, e.naturalWidth, e.naturalHeight, e.src]"
        ".join(); const same = e.dataset.lastLayout === k; e.dataset.lastLayout = k;"
        " return e.complete && e.naturalWidth > 0 && same; }", arg=shown.element_handle(), polling=250)
    width, height, natural_w, natural_h = shown.evaluate(
        "e => [e.getBoundingClientRect().width, e.getBoundingClientRect().height, e.naturalWidth, e.naturalHeight]")
    scale = min(width / natural_w, height / natural_h)  # object-fit: contain, centred
    x0, y0 = (width - natural_w * scale) / 2, (height - natural_h * scale) / 2
    tolerance = 2.5 / scale  # two and a half screen pixels, in the shown image's pixels (the original's here)
    shown.click(position={"x": x0 + natural_w * scale * 0.25, "y": y0 + natural_h * scale * 0.6})
    # The note keeps the default point's answer while the click's event runs (gradio's progress shows
    # inside it meanwhile): wait for an answer at the clicked point.
    try:
        page.wait_for_function(
            "([sel, fx, fy, tol]) => { const m = document.querySelector(sel).innerText.match("
            "/Query at \\((\\d+), (\\d+)\\) px of the (\\d+)x(\\d+) image/);"
            " return !!m && Math.abs(m[1] - fx * m[3]) <= tol && Math.abs(m[2] - fy * m[4]) <= tol; }",
            arg=["#attention-query-note", 0.25, 0.6, tolerance])
    except PlaywrightTimeout:
        pytest.fail(f"the click at (0.25 W, 0.6 H) was answered with: {note.inner_text()[:80]}")
    figure = page.locator("#attention-query-figure img")
    figure.wait_for()
    assert figure.evaluate("e => e.naturalHeight") > 3 * 200  # a figure per layer, one under the other
    note.scroll_into_view_if_needed()
    shot(page, "attention-query", full_page=False)


def test_metrics_tab_has_the_table_and_a_chart(page):
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator("#metrics-table")).to_contain_text("baseline")
    for chart in ("#pareto-flops", "#curves", "#per-class"):
        page.locator(f"{chart} .js-plotly-plot").first.wait_for()
        # Drawn and no longer pending (gradio dims a component under its status tracker while a
        # later event for it runs; with the whole zoo the curves are still updating at first).
        expect(page.locator(f"{chart} [data-testid='status-tracker']:not(.hide)")).to_have_count(0, timeout=30_000)
    shot(page, "metrics")


def test_evaluate_tab_filters_ranks_and_opens_an_image(page):
    """The zoo's stored numbers (no images here): evaluate, filter by class, open a ranked image."""
    page.get_by_role("tab", name="Evaluate").click()
    page.mouse.wheel(0, -10_000)
    assert in_viewport(page.locator("#evaluate-button")) and in_viewport(page.locator("#evaluate-stop"))
    page.locator("#evaluate-button").click()
    located = page.locator("#evaluate-localisation .js-plotly-plot")
    located.wait_for()
    expect(located).to_contain_text("energy in boxes")
    expect(page.locator("#evaluate-table")).to_contain_text("within")  # a verdict
    page.locator("#evaluate-class input").click()
    page.get_by_role("option", name="WBC", exact=True).click()
    expect(page.locator("#evaluate-objects .js-plotly-plot")).to_contain_text("objects (WBC)")
    expect(located).to_contain_text("class WBC")
    first = page.locator('#evaluate-images [data-testid="cell-0-1"]')
    name = first.inner_text().strip()
    first.click()
    expect(page.locator("#evaluate-open input")).to_have_value(name)
    review = page.locator("#evaluate-review .js-plotly-plot")
    review.locator("image").first.wait_for(state="attached")
    expect(review).to_contain_text("ground truth")
    review_colours = shape_colours(review)  # issue 35: Evaluate's review used a third mapping
    shared = set(review_colours) & set(COMPARE_COLOURS)
    assert shared and all(set(review_colours[c]) == {COMPARE_COLOURS[c]} for c in shared), (review_colours,
                                                                                            COMPARE_COLOURS)
    expect(page.locator("#evaluate-review-caption")).to_contain_text("blank canvas")  # stored numbers only
    page.locator("#evaluate-localisation").scroll_into_view_if_needed()
    shot(page, "evaluate", full_page=False)
    # no pixels here: the button is off and says why (issue 35: it answered with an error toast)
    expect(page.locator("#evaluate-to-attention")).to_be_disabled()
    expect(page.locator("#evaluate-to-attention")).to_contain_text("need the images")
    # what was evaluated, above the table; both definitions of mAP side by side
    expect(page.locator("#evaluate-data")).to_contain_text("72 images, 945 objects")
    expect(page.locator("#evaluate-table")).to_contain_text("mAP50-95 (ultralytics val)")


def test_clicking_a_flow_of_the_sankey_lists_its_images(page):
    """Issue 36: a click on a link where the reference and a model disagree selects that flow in
    the picker and lists its images (gradio's Plot sends no plotly events: the page's script does)."""
    page.locator("#evaluate-class input").click()  # every class again (the test before picked WBC)
    page.get_by_role("option", name="all", exact=True).click()
    expect(page.locator("#evaluate-outcomes .js-plotly-plot")).to_contain_text("Each object (all)")
    links = page.locator("#evaluate-outcomes path.sankey-link")
    links.first.wait_for(state="attached")
    keys = page.evaluate("() => document.querySelector('#evaluate-outcomes .js-plotly-plot').data"
                         ".flatMap(t => t.link.customdata)")
    picker = page.locator("#evaluate-flow input")
    for k in range(links.count()):  # the links in the order drawn; the first off the diagonal
        links.nth(k).scroll_into_view_if_needed()
        x, y = links.nth(k).evaluate(  # a point on the ribbon itself (a curved ribbon's box centre may miss it)
            "e => { const p = e.getPointAtLength(e.getTotalLength() * 0.25), m = e.getScreenCTM();"
            " return [p.x * m.a + p.y * m.c + m.e, p.x * m.b + p.y * m.d + m.f]; }")
        page.mouse.click(x, y)
        clicked = page.locator("#evaluate-flow-click textarea, #evaluate-flow-click input").first.input_value()
        name, a, b = clicked.rsplit("|", 2)
        if a != b:
            break
    assert clicked in keys and a != b
    expect(picker).to_have_value(re.compile(rf"^{re.escape(name)}: reference .+ → .+ \(\d+\)$"))
    expect(page.locator('#evaluate-flow-images [data-testid="cell-0-1"]')).to_be_visible()  # its first image
    expect(page.locator("#evaluate-flow-images")).to_contain_text(name)


def test_evaluate_shows_how_much_self_attention_stays_on_the_objects(page, weights):
    """Issue 33: the zoo's yolo26n pair from the stored numbers: the localisation chart gets its
    third panel, and the table the per-head in-box share of each C2PSA layer."""
    from attention_lens.modeling.catalog import read_manifest

    entries = {e.name: e for e in read_manifest(weights)}
    pair = ["yolo26n-baseline-s0", "yolo26n-ema-neck-s0"]
    if not set(pair) <= set(entries):
        pytest.skip("the shipped zoo's yolo26n models are not here")
    page.get_by_role("tab", name="Evaluate").click()
    page.mouse.wheel(0, -10_000)
    set_models(page, "#evaluate-button", [entries[n].label for n in pair])
    page.locator("#evaluate-localise input").check()  # in the same column: set_models unticked it
    page.locator("#evaluate-class input").click()  # back to every class (an earlier test filtered)
    page.get_by_role("option", name="all", exact=True).click()
    page.locator("#evaluate-button").click()
    located = page.locator("#evaluate-localisation .js-plotly-plot")
    expect(located).to_contain_text("self-attention kept on the object", timeout=TIMEOUT_MS)  # the job's answer
    page.get_by_text("Where the maps fall: every layer's numbers").click()  # folded
    expect(page.locator("#evaluate-localisation-table")).to_contain_text("h0 ")
    located.scroll_into_view_if_needed()
    shot(page, "evaluate-self-attention", full_page=False)

