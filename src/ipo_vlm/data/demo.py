"""The bundled demo datasets: a fixed subset of Fashion-MNIST (10 classes, MIT licence).

The package carries ``assets/demo_data/fashion_mnist_demo.npz`` (built by
``scripts/build_demo_data.py``): per class 200 train, 20 val and 200 test images, uint8 28x28.
Sample refs are ``"<pool>/<index>"`` into those arrays.

The shifted variants hold the same items in another medium (``ipo_vlm.data.renderings``):
``demo-blurry`` (the shifted demo condition) out of focus, in ``fashion_mnist_blurry.npz``, and
``demo-sketch`` drawn as sketches, in ``fashion_mnist_sketch.npz``
(``scripts/build_demo_data.py --rendering blurry|sketch``)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.data.base import Dataset, DatasetInfo, Sample
from ipo_vlm.data.files import SPLITS
from ipo_vlm.errors import ConfigError, DataError
from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo_data"
NPZ_NAME = "fashion_mnist_demo.npz"
#: Fashion-MNIST's label order, as readable lowercase names ("T-shirt/top" -> "t-shirt")
CLASSNAMES = ("t-shirt", "trouser", "pullover", "dress", "coat",
              "sandal", "shirt", "sneaker", "bag", "ankle boot")
TEMPLATE = BASELINE_TEMPLATE
DOMAIN = "clothing item"
#: Debian's ``dataset-fashion-mnist``: the original files, read only by the scripts that rebuild
#: the bundled assets (the demo data and the demo VLM) and by their full-test-split checks
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")



@dataclass(frozen=True)
class DemoVariant:
    """One bundled demo dataset: its name, packed arrays, the defaults its ``DatasetInfo`` gets,
    the rendering of its images and, for a shifted variant, the templates that name its medium
    (the first is the obvious one) and templates that name a wrong one."""

    name: str
    npz_name: str
    record_name: str
    template: str
    domain: str
    rendering: str = "photo"
    medium_templates: tuple[str, ...] = ()
    wrong_medium_templates: tuple[str, ...] = ()


PLAIN = DemoVariant("demo", NPZ_NAME, "fashion_mnist_demo.json", TEMPLATE, DOMAIN)
# The shifted variants. As CoOp does for ImageNet-Sketch, the hand-crafted template is the photo
# template and the domain word does not name the medium: a run learns the images' medium only
# from the images themselves (their descriptions, its scores).
BLURRY = DemoVariant("demo-blurry", "fashion_mnist_blurry.npz", "fashion_mnist_blurry.json", TEMPLATE, DOMAIN,
                     "blurry", ("a blurry photo of a {}.", "a blurred photo of a {}.", "an out of focus picture of a {}."),
                     ("a negative photo of a {}.", "a sketch of a {}."))
SKETCH = DemoVariant("demo-sketch", "fashion_mnist_sketch.npz", "fashion_mnist_sketch.json", TEMPLATE, DOMAIN,
                     "sketch", ("a sketch of a {}.", "a pencil drawing of a {}.", "a hand-drawn sketch of a {}."),
                     ("a negative photo of a {}.", "a pixelated photo of a {}."))
#: the shifted demo condition's dataset (``ipo demo``, the ``demo-shifted`` preset)
SHIFTED = BLURRY
VARIANTS = {v.name: v for v in (PLAIN, BLURRY, SKETCH)}


_lock = threading.Lock()
_cache: dict[Path, dict[str, Any]] = {}


def read_fashion_mnist(split: str, source: Path = FASHION_MNIST_DIR) -> tuple["np.ndarray", "np.ndarray"]:
    """The original ``"train"`` (60k) or ``"test"`` (10k) split as uint8 images (n, 28, 28) and
    uint8 labels, from the gzipped IDX files (big-endian header, then raw bytes)."""
    import gzip

    import numpy as np

    def read_idx(path: Path) -> np.ndarray:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)

    prefix = "train" if split == "train" else "t10k"
    return read_idx(source / f"{prefix}-images-idx3-ubyte.gz"), read_idx(source / f"{prefix}-labels-idx1-ubyte.gz")


def _load_arrays(asset_dir: Path, variant: DemoVariant = PLAIN) -> dict[str, "np.ndarray"]:
    """Read (once per process) and verify the packed arrays against their recorded sha256."""
    import numpy as np

    with _lock:
        path = asset_dir / variant.npz_name
        if path in _cache:
            return _cache[path]
        try:
            data = path.read_bytes()
            expected = json.loads((asset_dir / variant.record_name).read_text(encoding="utf-8"))["sha256"]
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"demo data missing or unreadable in {asset_dir}: {e}") from None
        if hashlib.sha256(data).hexdigest() != expected:
            raise DataError(f"demo data {path} does not match its recorded sha256; reinstall the package")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        _cache[path] = arrays
        return arrays


class DemoDataset(Dataset):
    """Fashion-MNIST subset packed in the package; ``data_root`` is not needed. ``variant``
    picks the plain demo (``PLAIN``) or a shifted one (``BLURRY``, ``SKETCH``)."""

    def __init__(self, asset_dir: Path = ASSET_DIR, template: str | None = None,
                 domain: str | None = None, variant: DemoVariant = PLAIN) -> None:
        self.asset_dir = Path(asset_dir)
        self.variant = variant
        self.info = DatasetInfo(variant.name, CLASSNAMES, template or variant.template, domain or variant.domain)

    def _arrays(self) -> dict[str, "np.ndarray"]:
        return _load_arrays(self.asset_dir, self.variant)

    def split(self, name: str) -> list[Sample]:
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
        labels = self._arrays()[f"{name}_labels"]
        return [Sample(f"{name}/{i}", int(lab), CLASSNAMES[int(lab)]) for i, lab in enumerate(labels)]

    def array(self, sample: Sample) -> "np.ndarray":
        """The sample's uint8 28x28 grey image."""
        pool, _, index = sample.ref.partition("/")
        images = self._arrays().get(f"{pool}_images")
        if images is None or not index.isdigit() or int(index) >= len(images):
            raise DataError(f"no demo image {sample.ref!r}")
        return images[int(index)]

    def open_image(self, sample: Sample) -> "Image.Image":
        from PIL import Image

        # native 28x28; the VLM's preprocessing does any resizing
        return Image.fromarray(self.array(sample)).convert("RGB")

    def content_id(self, sample: Sample) -> str:
        arr = self.array(sample)
        h = hashlib.sha256(f"uint8{tuple(arr.shape)}:".encode())
        h.update(arr.tobytes())
        return h.hexdigest()

    def check_samples(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self.array(s)
