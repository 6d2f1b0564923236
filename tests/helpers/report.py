"""Helpers for the explain and report tests: a real (torch-free) run made by ``optimize``, a
headless Chromium that renders a page, and a recording proxy that sees every request it makes."""

from __future__ import annotations

import shutil
import socketserver
import subprocess
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from ipo_vlm.testing.fakes import FAKE_CLASSES, FakeDataset, FakeVLM

XSS_TEMPLATE = "<img src=x onerror=alert(1)> {}"
XSS_CLASS = "<script>alert(2)</script> coat"
# Marks the page when it runs (an alert would block headless Chromium instead of showing up).
XSS_MARKER = "<img src=x onerror=\"document.body.setAttribute('data-ran','yes')\"> {}"
WORDS = ["photo", "clothing", "garment", "studio", "plain", "worn", "folded", "bright", "dark", "item", "picture", "close-up"]
ANSWERS = [
    "\n".join(f"{k + 1}. a {WORDS[(i + k) % 12]} {WORDS[(3 * i + 2 * k + 1) % 12]} of a <CLASS>." for k in range(4))
    for i in range(30)
]
# Chromium's own background traffic (time sync, sign-in, search preconnect), present with every
# page even with background networking disabled; a page's requests would go to other hosts.
BROWSER_HOSTS = ("google.com", "gstatic.com", "googleapis.com")


class CountingVLM(FakeVLM):
    """The fake VLM, counting the texts it encodes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.texts_encoded = 0

    def encode_texts(self, texts):  # type: ignore[no-untyped-def]
        self.texts_encoded += len(texts)
        return super().encode_texts(texts)


@dataclass
class FakeRun:
    path: Path
    dataset: FakeDataset
    vlm: CountingVLM
    result: dict[str, Any]


def fake_run(path: Path, classnames: tuple[str, ...] = FAKE_CLASSES, steps: int = 3, answers: list[str] = ANSWERS) -> FakeRun:
    """A finished run in ``path`` written by the real ``optimize`` on the fakes."""
    from ipo_vlm.captioner.base import NoCaptioner
    from ipo_vlm.config import preset
    from ipo_vlm.runs.optimize import Backends, optimize
    from ipo_vlm.testing.scripted import ScriptedLLM

    ds = FakeDataset(classnames)
    vlm = CountingVLM(ds.info.classnames)
    config = preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                    optimize={"steps": steps, "candidates": 3, "memory_size": 6, "select_on": "train"})
    result = optimize(config, path, backends=Backends(ds, vlm, ScriptedLLM(answers, model_id="scripted-test"), NoCaptioner()))
    return FakeRun(path, ds, vlm, result.to_dict())


# -- the DOM ---------------------------------------------------------------------------------

@dataclass
class Dom:
    """Elements (tag, attributes) and the text of a page, as an HTML parser sees them."""

    elements: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def parse_dom(markup: str) -> Dom:
    dom = Dom()
    chunks: list[str] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
            dom.elements.append((tag, {k: v or "" for k, v in attrs}))

        def handle_data(self, data):  # type: ignore[no-untyped-def]
            chunks.append(data)

    P(convert_charrefs=True).feed(markup)
    dom.text = "".join(chunks)
    return dom


def external_urls(dom: Dom) -> list[str]:
    """Every src/href that would leave the file (anything but data:, #anchors, relative paths)."""
    out = []
    for _, attrs in dom.elements:
        for key in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(key)
            if value and (":" in value.split("/")[0] or value.startswith("//")) and not value.startswith("data:"):
                out.append(value)
    return out


# -- the browser -----------------------------------------------------------------------------

class _Recorder(BaseHTTPRequestHandler):
    def _record(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")  # type: ignore[attr-defined]
        self.send_response(404)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_CONNECT = _record

    def log_message(self, *args: Any) -> None:
        pass


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that answers 404 to everything and remembers each request."""

    def __enter__(self) -> "RecordingProxy":
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recorder)
        self.server.daemon_threads = True
        self.server.seen = []  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def page_requests(self) -> list[str]:
        """Requests that did not come from Chromium's own services."""
        def own(line: str) -> bool:
            target = line.split(" ", 1)[1]
            host = target.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
            return any(host == h or host.endswith("." + h) for h in BROWSER_HOSTS)

        return [line for line in self.server.seen if not own(line)]  # type: ignore[attr-defined]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("headless Chromium is needed for the browser tests: apt-get install chromium (make test installs it)")
    return path


@dataclass
class Rendered:
    dom: Dom
    screenshot: Path
    requests: list[str]


def render(page: Path, shot: Path, width: int = 1280, height: int = 2000) -> Rendered:
    """Open ``page`` in headless Chromium behind the recording proxy: the DOM after load, a
    screenshot, and the requests the page made."""
    with RecordingProxy() as proxy:
        try:
            proc = subprocess.run(
                [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
                 f"--user-data-dir={shot.parent / (shot.stem + '-profile')}",
                 f"--proxy-server=http://127.0.0.1:{proxy.port}", "--proxy-bypass-list=<-loopback>",
                 f"--window-size={width},{height}", f"--screenshot={shot}", "--dump-dom", page.resolve().as_uri()],
                capture_output=True, text=True, timeout=60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"Chromium did not finish {page.name} in 60 s: a script on the page may have opened a dialog")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists(), proc.stderr[-2000:]
    return Rendered(parse_dom(proc.stdout), shot, proxy.page_requests())


def image_stats(path: Path) -> tuple[tuple[int, int], float, float]:
    """(size, grey-level standard deviation, fraction of pixels that are not near-white)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64)
        return im.size, float(grey.std()), float(np.mean(grey < 240))
