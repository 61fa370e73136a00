"""scikit-learn's 8x8 handwritten digits (shipped inside the package: no download)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits


def digits():
    """(x_train, y_train), (x_val, y_val): images scaled to [0, 1], shape (8, 8, 1); 80/20 split."""
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(x))
    split = int(0.8 * len(x))
    return (x[order[:split]], y[order[:split]]), (x[order[split:]], y[order[split:]])
