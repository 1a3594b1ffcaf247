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
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 120_000



@pytest.fixture(autouse=True)
def chromium_installed():
    if not Path(CHROMIUM).exists():
        from conftest import missing

        missing("Debian chromium is not installed (apt-get install chromium)")


EXAMPLE = ROOT / "assets" / "examples" / "synthetic_smear_1.jpg"


@pytest.fixture(scope="module")
def weights(request):
    from components.modeling.catalog import read_manifest

    shipped = read_manifest(ROOT / "weights")
    if sum(e.attention is None for e in shipped) and sum(e.attention is not None for e in shipped) >= 2:
        return ROOT / "weights"
    return request.getfixturevalue("tiny_weights")


@pytest.fixture(scope="module")
def picked(weights):
    """Labels of the baseline and two attention models, as the checkbox shows them."""
    from components.modeling.catalog import read_manifest

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
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(app_url)
        pg.get_by_text("Attention Lens").first.wait_for()
        yield pg
        browser.close()


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_compare_tab_shows_every_model(page, picked):
    page.locator("#compare-image input[type=file]").set_input_files(str(EXAMPLE))
    for entry in picked:
        box = page.get_by_label(entry.label)
        if not box.is_checked():
            box.check()
    page.locator("#compare-button").click()
    page.locator("#compare-gallery img").nth(2).wait_for()
    assert page.locator("#compare-gallery img").count() >= 3
    shot(page, "compare")
    table = page.locator("#compare-table")
    for entry in picked:
        expect(table).to_contain_text(entry.name)


def test_attention_tab_renders_a_heatmap(page, picked):
    page.get_by_role("tab", name="Attention").click()
    page.locator("#attention-image input[type=file]").set_input_files(str(EXAMPLE))
    page.locator("#attention-button").click()
    page.locator("#attention-gallery img").first.wait_for()
    assert page.locator("#attention-gallery img").count() >= 2
    # The channel chart draws, with its top-channel labels (CBAM has a channel gate).
    page.locator("#attention-channels .js-plotly-plot").first.wait_for()
    labels = page.locator("#attention-channels .annotation-text").filter(has_text=re.compile(r"^ch\d+$"))
    expect(labels.first).to_be_visible()
    shot(page, "attention")
    expect(page.locator("#attention-layers")).to_contain_text(picked[1].attention)


def test_metrics_tab_has_the_table_and_a_chart(page):
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator("#metrics-table")).to_contain_text("baseline")
    for chart in ("#pareto-flops", "#curves", "#per-class"):
        page.locator(f"{chart} .js-plotly-plot").first.wait_for()
    shot(page, "metrics")
