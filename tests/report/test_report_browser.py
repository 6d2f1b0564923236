"""The report as a person sees it: opened from disk in real headless Chromium (Debian's
``chromium``), behind a proxy that records every request the page makes."""

from __future__ import annotations

import json

from ipo_vlm.report import build_report
from ipo_vlm.testing.runs import synthetic_bench, synthetic_run
from helpers.report import XSS_CLASS, XSS_MARKER, XSS_TEMPLATE, external_urls, image_stats, render

WIDTH, HEIGHT = 1280, 2000


def assert_rendered(shot, width=WIDTH, height=HEIGHT):
    size, spread, inked = image_stats(shot)
    assert size == (width, height)
    assert spread > 20 and inked > 0.03, (spread, inked)  # text, tables and plots, not a blank page


def test_run_report_renders_offline_and_runs_nothing(tmp_path):
    run = synthetic_run(tmp_path / "run", steps=15, classnames=("t-shirt", XSS_CLASS, "dress", "bag", "sandal", "shirt"),
                        extra_templates=[XSS_TEMPLATE])
    result = json.loads((run / "result.json").read_text())
    result["handcrafted"]["template"] = XSS_MARKER
    (run / "result.json").write_text(json.dumps(result))
    seen = render(build_report(run), tmp_path / "shot.png")
    assert_rendered(seen.screenshot)
    dom = seen.dom
    assert dom.find("table", id="headline") and dom.find("table", id="importance")
    plots = [a for a in dom.find("img") if "plot" in a.get("class", "")]
    assert len(plots) >= 2 and all(a["src"].startswith("data:image/png;base64,") for a in plots)
    # the payloads are text on the page, not elements
    assert XSS_TEMPLATE in dom.text and XSS_CLASS in dom.text and XSS_MARKER in dom.text
    assert not dom.find("script") and not [a for a in dom.find("img") if "onerror" in a]
    assert "data-ran" not in dom.find("body")[0]
    assert seen.requests == [] and external_urls(dom) == []


def test_the_checks_catch_a_page_that_leaks_or_injects(tmp_path):
    """The same checks on a page built without escaping: they must fail there."""
    page = tmp_path / "bad.html"
    page.write_text(f'<!DOCTYPE html><html><body><p>{XSS_MARKER}</p><img src="http://example.invalid/pixel.png"></body></html>')
    seen = render(page, tmp_path / "bad.png", 400, 300)
    assert [a for a in seen.dom.find("img") if "onerror" in a]
    assert seen.dom.find("body")[0].get("data-ran") == "yes"
    assert any("example.invalid" in r for r in seen.requests)
    assert external_urls(seen.dom) == ["http://example.invalid/pixel.png"]
    _, spread, inked = image_stats(seen.screenshot)
    assert inked < 0.03  # nearly blank: the threshold above means something


def test_benchmark_report_and_its_cell_pages_render(tmp_path):
    bench = synthetic_bench(tmp_path / "bench", datasets=("demo", "eurosat"), methods=("ipo", "random"), seeds=(1,))
    seen = render(build_report(bench), tmp_path / "bench.png", WIDTH, 1200)
    assert_rendered(seen.screenshot, WIDTH, 1200)
    assert seen.dom.find("table", id="cells") and seen.dom.find("table", id="costs")
    links = [a["href"] for a in seen.dom.find("a")]
    assert len(links) == 3 and seen.requests == []
    cell = render(bench / links[0], tmp_path / "cell.png", WIDTH, 1200)
    assert_rendered(cell.screenshot, WIDTH, 1200)
    assert cell.dom.find("table", id="headline") and cell.requests == []
