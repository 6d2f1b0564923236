"""The docs site builds with ``mkdocs build --strict`` (what ``make docs`` runs), loads nothing
from the network, and a built page renders in headless Chromium with its navigation and search."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers.report import RecordingProxy, chromium, image_stats, parse_dom

REPO = Path(__file__).resolve().parents[2]
# Elements that make a browser fetch something when the page is viewed.
_FETCHING = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",), "source": ("src", "srcset"),
             "audio": ("src",), "video": ("src", "poster"), "embed": ("src",), "object": ("data",)}
_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.I)


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=config.parent, capture_output=True, text=True, timeout=300,
                          env={**_env(), "NO_MKDOCS_2_WARNING": "1"})


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    done = mkdocs_build(REPO / "mkdocs.yml", out)
    assert done.returncode == 0, f"mkdocs build --strict failed (make docs):\n{done.stderr[-4000:]}"
    return out


def fetched_urls(markup: str) -> list[str]:
    """URLs that viewing the page would fetch from another host."""
    dom = parse_dom(markup)
    out = []
    for tag, attrs in dom.elements:
        if tag == "link" and attrs.get("rel", "") in ("canonical", "alternate", "author", "license"):
            continue
        for key in _FETCHING.get(tag, ()):
            value = attrs.get(key, "")
            if any(_EXTERNAL.match(part.strip().split(" ")[0]) for part in value.split(",") if part.strip()):
                out.append(f"<{tag} {key}={value}>")
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", markup):
        if _EXTERNAL.match(url):
            out.append(f"url({url})")
    return out


def test_the_site_builds_strictly_with_every_section(site):
    for page in ("index.html", "getting-started/index.html", "reference/cli/index.html", "reference/settings/index.html",
                 "reference/api/index.html", "results/index.html", "demo-standins/index.html", "guides/own-data/index.html"):
        assert (site / page).is_file(), page
    api = (site / "reference/api/index.html").read_text(encoding="utf-8")
    # mkdocstrings rendered the docstrings, not just the headings
    assert "Run (or resume)" in api and "Base class of every error" in api
    assert (site / "report.png").is_file()


def test_nothing_is_fetched_from_the_network(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 20
    leaks = {str(p.relative_to(site)): urls for p in pages if (urls := fetched_urls(p.read_text(encoding="utf-8")))}
    assert leaks == {}
    for css in site.rglob("*.css"):
        assert not [u for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8")) if _EXTERNAL.match(u)], css
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(encoding="utf-8")


def test_the_offline_check_catches_a_fetching_page():
    assert fetched_urls('<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">') != []
    assert fetched_urls('<script src="//cdn.example.invalid/x.js"></script>') != []
    assert fetched_urls('<a href="https://example.invalid/">a link is not a fetch</a><img src="../report.png">') == []


def test_a_broken_link_fails_the_build(tmp_path):
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "src").symlink_to(REPO / "src")
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](no-such-page.md)\n", encoding="utf-8")
    done = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "no-such-page.md" in done.stderr


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_page_renders_in_chromium_with_navigation_and_search(site, tmp_path):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    titles = {doc.get("title") for doc in index["docs"]}
    assert "Getting started" in titles and "Your own images with an API model" in titles

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shot = tmp_path / "page.png"
    url = f"http://127.0.0.1:{server.server_address[1]}/getting-started/"
    try:
        with RecordingProxy() as proxy:
            # Loopback (the served site) goes direct; any other host would reach the recording proxy.
            proc = subprocess.run(
                [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
                 f"--user-data-dir={tmp_path / 'profile'}", f"--proxy-server=http://127.0.0.1:{proxy.port}",
                 "--window-size=1280,1400", "--virtual-time-budget=3000", f"--screenshot={shot}", "--dump-dom", url],
                capture_output=True, text=True, timeout=90,
            )
            requests = proxy.page_requests()
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    size, spread, inked = image_stats(shot)
    assert size == (1280, 1400) and spread > 20 and inked > 0.03, (spread, inked)  # text and navigation, not a blank page
    dom = parse_dom(proc.stdout)
    navs = [a for t, a in dom.elements if t == "nav" and "md-nav" in a.get("class", "")]
    assert navs, "no navigation on the page"
    links = {a.get("href", "") for t, a in dom.elements if t == "a"}
    assert any("guides/own-data" in href for href in links) and any("reference/cli" in href for href in links)
    assert "Your own images with an API model" in dom.text
    assert requests == []
    assert fetched_urls(proc.stdout) == []
