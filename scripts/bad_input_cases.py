"""The second round of ``bad_input_sweep.py``: a newcomer's mistakes with run files, images,
servers, the environment and the output streams. Kept apart from the first round so that each
file stays readable; the sweep runs both.

A case may guard a folder: every file in it is hashed before the case and checked after it, and a
changed or missing file is "lost work" whatever the exit status says."""

from __future__ import annotations

import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable


class _Handler(BaseHTTPRequestHandler):
    """``/busy/...`` answers 429 with a long Retry-After; ``/html/...`` answers a web page."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/busy"):
            body, kind, status, extra = b'{"error": {"message": "slow down"}}', "application/json", 429, {"Retry-After": "3600"}
        else:
            body, kind, status, extra = b"<!doctype html><html><body>Welcome to nginx!</body></html>", "text/html", 200, {}
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:  # quiet
        pass


def start_server() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _png(path: Path, shade: int, mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        import numpy as np

        Image.fromarray(np.full(size[::-1], shade * 257, dtype=np.uint16)).save(path)
    elif mode == "1":
        Image.new("1", size).save(path)
    else:
        Image.new(mode, size, (shade, 255 - shade, shade // 2)).save(path)


def _folders(root: Path, classes: dict[str, int]) -> Path:
    for c, n in classes.items():
        for i in range(n):
            _png(root / c / f"{i}.png", (i * 37 + len(c) * 11) % 256)
    return root


def setup2(tmp: Path, s: dict[str, str], run_cli: Callable[[list[str]], None]) -> dict[str, str]:
    """Files for the second round; ``run_cli`` runs one ``ipo`` command that must succeed."""
    imgs = _folders(tmp / "imgs2", {"cat": 6, "dog": 6, "bird": 6, "fish": 6})
    folder_run = tmp / "folder-run"
    run_cli(["optimize", "--dataset", str(imgs), "--vlm", "demo:fashion", "--llm", s["script"], "--captioner", "none",
             "--shots", "2", "--steps", "1", "--candidates", "3", "--out", str(folder_run)])
    # a truncated JPEG among the test images: the header is fine, the pixels are not
    trunc = tmp / "trunc"
    _folders(trunc / "train", {"cat": 10, "dog": 10, "bird": 10, "fish": 10})
    _folders(trunc / "test", {"cat": 3, "dog": 3, "bird": 3, "fish": 3})
    from PIL import Image

    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(trunc / "test" / "fish" / "5.jpg", quality=90)
    data = (trunc / "test" / "fish" / "5.jpg").read_bytes()
    (trunc / "test" / "fish" / "5.jpg").write_bytes(data[: len(data) // 2])
    # a 400-megapixel image among ordinary ones (a 1-bit PNG: small on disk)
    bomb = tmp / "bomb"
    for i in range(3):
        _png(bomb / f"ok{i}.png", 40 * i)
    _png(bomb / "huge.png", 0, mode="1", size=(20000, 20000))
    _folders(tmp / "two", {"cat": 6, "dog": 6})
    _folders(tmp / "three", {"cat": 6, "dog": 6, "bird": 6})
    (tmp / "grid_typo.yaml").write_text("datasets: [demoo]\nshots: [1]\nseeds: [1]\nmethods: [handcrafted]\nvlm: demo:fashion\n")
    return {"imgs2": str(imgs), "folder_run": str(folder_run), "trunc": str(trunc), "bomb": str(bomb),
            "server": start_server()}


def copy_run(src: str, dst: str, edit: Callable[[Path], None] | None = None) -> Callable[[], None]:
    def prep() -> None:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        if edit:
            edit(Path(dst))
    return prep


def _edit_config(**changes: Any) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        raw = json.loads((run / "config.json").read_text())
        for dotted, value in changes.items():
            d = raw["config"]
            *sections, key = dotted.split("__")
            for sec in sections:
                d = d[sec]
            d[key] = value
        (run / "config.json").write_text(json.dumps(raw, indent=2))
    return edit


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(text)


def _garbage_line(name: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        lines = (run / name).read_text().splitlines(keepends=True)
        lines.insert(1, "this line was typed by hand }\n")
        (run / name).write_text("".join(lines))
    return edit


def _nan_line(run: Path) -> None:
    with open(run / "history.jsonl", "a") as f:
        f.write('{"step": 1, "template": "a nan {}.", "train_acc": NaN, "train_loss": NaN, "source": "llm"}\n')


def _remove_an_image(run: Path) -> None:
    """Move away one test image that the run's split.json names (as a user cleaning up would)."""
    split = json.loads((run / "split.json").read_text())
    root = Path(json.loads((run / "config.json").read_text())["config"]["data"]["dataset"])
    ref = split["samples"]["test_novel"][0][0]
    (root / ref).rename(root / f"{ref}.gone")


def cases2(s: dict[str, str], Case: Any) -> list[Any]:
    t, run, script, server = s["tmp"], s["run"], s["script"], s["server"]
    opt = ["optimize", "--preset", "demo", "--llm", script, "--captioner", "none", "--steps", "1", "--candidates", "3"]
    img = f"{s['imgs2']}/cat/0.png"
    c = lambda n: f"{t}/copy{n}"  # noqa: E731
    no_env = {"IPO_CACHE_DIR": ""}  # "" = take the variable away (see _env)
    busy = {"OPENAI_BASE_URL": f"{server}/busy/v1", "OPENAI_API_KEY": "sk-test"}
    html = {"OPENAI_BASE_URL": f"{server}/html/v1", "OPENAI_API_KEY": "sk-test"}
    return [
        # an output path that is one of the run's own files (or the dataset's)
        Case("classify --csv R/history.jsonl", ["classify", "--run", c(1), img, "--csv", f"{c(1)}/history.jsonl"],
             prep=copy_run(run, c(1)), guard=c(1), must="history.jsonl"),
        Case("report --out R/result.json", ["report", c(2), "--out", f"{c(2)}/result.json"], prep=copy_run(run, c(2)), guard=c(2)),
        Case("export --out R/config.json", ["export", c(3), "--out", f"{c(3)}/config.json"], prep=copy_run(run, c(3)), guard=c(3)),
        Case("data --out R/split.json", ["data", "--out", f"{c(4)}/split.json"], prep=copy_run(run, c(4)), guard=c(4)),
        Case("classify --csv is an input image", ["classify", "--run", run, f"{s['imgs2']}/dog", "--csv", f"{s['imgs2']}/dog/0.png"],
             guard=f"{s['imgs2']}/dog"),
        Case("optimize --out inside --data-root", [*opt, "--dataset", s["imgs2"], "--vlm", "demo:fashion", "--shots", "2",
             "--out", f"{s['imgs2']}/myrun"], must="data"),
        Case("data --out inside --data-root", ["data", "--dataset", s["imgs2"], "--shots", "2", "--out", f"{s['imgs2']}/cat/split.json"],
             must="data"),
        Case("report --out R/history.jsonl", ["report", c(5), "--out", f"{c(5)}/history.jsonl"],
             prep=copy_run(run, c(5)), guard=c(5)),
        # what a resume may change
        Case("resume hand-edited vlm", ["optimize", "--resume", "--out", c(6), "--steps", "2"],
             prep=copy_run(run, c(6), _edit_config(vlm="demo:fashion-shifted")), must="vlm"),
        Case("resume hand-edited memory_size", ["optimize", "--resume", "--out", c(7), "--steps", "2"],
             prep=copy_run(run, c(7), _edit_config(optimize__memory_size=8)), must="memory_size"),
        Case("resume hand-edited candidates", ["optimize", "--resume", "--out", c(8), "--steps", "2"],
             prep=copy_run(run, c(8), _edit_config(optimize__candidates=7)), must="candidates"),
        # images: verified before the LLM is asked, guidance when one is gone
        Case("optimize truncated jpeg in the test split", [*opt, "--dataset", s["trunc"], "--vlm", "demo:fashion", "--shots", "2",
             "--out", f"{t}/o-trunc"], must="5.jpg"),
        Case("resume after an image of the split was deleted", ["optimize", "--resume", "--out", c(9), "--steps", "2"],
             prep=copy_run(s["folder_run"], c(9), _remove_an_image), must="split|--data-root|gone|missing|not found"),
        Case("classify a folder with a 400-megapixel image", ["classify", "--run", run, s["bomb"]], expect="partial",
             must="huge.png"),
        Case("optimize with a 2-class folder", [*opt, "--dataset", f"{t}/two", "--vlm", "demo:fashion", "--shots", "2",
             "--out", f"{t}/o-two"], must="class"),
        Case("optimize with a 3-class folder", [*opt, "--dataset", f"{t}/three", "--vlm", "demo:fashion", "--shots", "2",
             "--out", f"{t}/o-three"], expect="warn", must="class"),
        # servers
        Case("backends --check-llm 429 Retry-After 3600", ["backends", "--check-llm", "openai:m"], env=busy, max_s=60,
             must="[Rr]etry-[Aa]fter|wait"),
        Case("backends --check-llm web page at base URL", ["backends", "--check-llm", "openai:m"], env=html, must="HTML|html|web page"),
        Case("optimize --llm openai web page at base URL", [*opt, "--llm", "openai:m", "--out", f"{t}/o-html"], env=html,
             must="HTML|html|web page"),
        Case("OPENAI_BASE_URL without scheme", ["backends", "--check-llm", "openai:m"],
             env={"OPENAI_BASE_URL": "localhost:8000/v1", "OPENAI_API_KEY": "sk-x"}, must="http"),
        Case("OPENAI_BASE_URL ftp scheme", ["backends", "--check-llm", "openai:m"],
             env={"OPENAI_BASE_URL": "ftp://localhost/v1", "OPENAI_API_KEY": "sk-x"}, must="http"),
        Case("OPENAI_API_KEY non-ASCII", ["backends", "--check-llm", "openai:m"],
             env={"OPENAI_BASE_URL": f"{server}/html/v1", "OPENAI_API_KEY": "sk-tëst"}, must="OPENAI_API_KEY"),
        Case("OPENAI_API_KEY ends in CR", ["backends", "--check-llm", "openai:m"],
             env={"OPENAI_BASE_URL": f"{server}/html/v1", "OPENAI_API_KEY": "sk-test\r"}, must="OPENAI_API_KEY"),
        # the environment and the output streams
        *([Case("HOME unset, uid without passwd entry", ["evaluate", "--dataset", "demo", "--vlm", "demo:fashion", "--template", "a {}"],
                 env={**no_env, "HOME": "", "XDG_CACHE_HOME": ""}, user=12345, must="HOME|IPO_CACHE_DIR")]
          if os.geteuid() == 0 else []),  # only root may start a process under another uid
        Case("history to a closed pipe", ["history", run, "--top", "0"], stdout="closed-pipe", expect="quiet"),
        Case("classify to a closed pipe", ["classify", "--run", run, s["imgs2"]], stdout="closed-pipe", expect="quiet"),
        Case("history > /dev/full", ["history", run], stdout="/dev/full", must="space|full"),
        Case("export with stdout closed", ["export", run], stdout="closed", expect="quiet"),
        # run files damaged by hand
        Case("history: result.json holds a list", ["history", c(10)], prep=copy_run(run, c(10), _write("result.json", "[1, 2]")),
             must="result.json"),
        Case("export: result.json holds a list", ["export", c(10)], prep=copy_run(run, c(10), _write("result.json", "[1, 2]")),
             must="result.json"),
        Case("classify: result.json holds a list", ["classify", "--run", c(10), img],
             prep=copy_run(run, c(10), _write("result.json", "[1, 2]")), must="result.json"),
        Case("report: result.json holds a list", ["report", c(10), "--out", f"{t}/r10.html"],
             prep=copy_run(run, c(10), _write("result.json", "[1, 2]")), must="result.json"),
        Case("history: garbage line in history.jsonl", ["history", c(11)], prep=copy_run(run, c(11), _garbage_line("history.jsonl")),
             expect="warn", must="line 2 of .*history.jsonl"),
        Case("resume: garbage line in steps.jsonl", ["optimize", "--resume", "--out", c(12)],
             prep=copy_run(run, c(12), _garbage_line("steps.jsonl")), expect="warn", must="line 2 of .*steps.jsonl"),
        Case("history: NaN scores in history.jsonl", ["history", c(13)], prep=copy_run(run, c(13), _nan_line),
             expect="warn", must="history.jsonl"),
        Case("history: split.json holds a string", ["classify", "--run", c(14), img],
             prep=copy_run(run, c(14), _write("split.json", '"hello"')), must="split.json"),
        Case("history: config.json config is a list", ["history", c(15)],
             prep=copy_run(run, c(15), _write("config.json", '{"config": []}')), must="config.json"),
        # messages
        Case("evaluate 5000-char template without {}", ["evaluate", "--dataset", "demo", "--vlm", "demo:fashion",
             "--template", "a photo " * 625]),
        Case("optimize 5000-char --dataset", [*opt, "--dataset", "x" * 5000, "--out", f"{t}/o-long"]),
        Case("benchmark misspelt dataset in grid", ["benchmark", f"{t}/grid_typo.yaml", "--out", f"{t}/bench-typo"], must="demoo"),
        Case("classify --top 0", ["classify", "--run", run, img, "--top", "0"]),
        Case("classify --ensemble 0", ["classify", "--run", run, img, "--ensemble", "0"]),
        Case("history --top -1", ["history", run, "--top", "-1"]),
    ]
