"""Comparing numbers recorded on another machine with numbers computed on this one.

The scores are float32 work (features, matrix products, softmax) summed in an order the BLAS /
SIMD kernels choose: an AVX-512 Intel core and an AVX2 AMD core round the same sum differently in
the last bits (``0.7136460863776047`` against ``0.713646086377605``). Equality to the bit holds only
for a number computed twice on the same machine; a number recorded elsewhere agrees to float32's
precision (eps 1.2e-7) times a margin for the few hundred terms accumulated -- ``REL`` below. Labels,
counts, strings and the order of records must still match exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

REL = 1e-5  # float32 eps (1.2e-7) x ~100 for sums over hundreds of terms in another order
ABS = 1e-7  # numbers near zero (a loss of 0.0, an accuracy gap) agree to float32 eps


def assert_close(actual: Any, expected: Any, *, rel: float = REL, abs_: float = ABS, where: str = "") -> None:
    """``actual == expected`` for nested JSON-like data, but floats within ``rel``/``abs_``."""
    here = where or "value"
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)) and isinstance(expected, (int, float)), f"{here}: {actual!r} != {expected!r}"
        assert not isinstance(actual, bool) and not isinstance(expected, bool), f"{here}: {actual!r} != {expected!r}"
        assert math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_), f"{here}: {actual!r} != {expected!r} (rel {rel})"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{here}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_close(actual[key], expected[key], rel=rel, abs_=abs_, where=f"{here}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), f"{here}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, rel=rel, abs_=abs_, where=f"{here}[{i}]")
    else:
        assert actual == expected, f"{here}: {actual!r} != {expected!r}"


def assert_pixels_close(actual: np.ndarray, expected: np.ndarray, *, share: float = 1e-3) -> None:
    """uint8 images rendered through float32 (``rint(x * 255)``): a value that lands on .5 may round
    either way on another machine, so a pixel may differ by one level; no more, and only rarely."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    assert int(diff.max(initial=0)) <= 1, f"pixels differ by up to {int(diff.max())} levels"
    assert float(np.mean(diff > 0)) <= share, f"{np.mean(diff > 0):.2%} of the pixels differ"
