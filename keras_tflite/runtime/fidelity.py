"""How far a quantized model's outputs are from the float model's, and whether they collapsed."""

from __future__ import annotations

import numpy as np

# int8 output variance below this fraction of float's is a flat line: the symptom of a
# representative set that clipped every real activation (the int8 model outputs ~a constant).
FLAT_LINE_VARIANCE_RATIO = 0.1


def fidelity(expected: list[np.ndarray], got: list[np.ndarray]) -> dict[str, float]:
    """Fidelity of `got` (quantized) against `expected` (float), worst case over the outputs.

    Returns:
        mae, rmse, normalized_rmse (RMSE over the float outputs' spread across samples),
        max_abs_error, cosine_similarity, snr_db, variance_ratio, and top1_agreement when an
        output looks like class scores (last dimension > 1, rank 2).
    """
    per_output = [_one(e.astype(np.float64), g.astype(np.float64)) for e, g in zip(expected, got)]
    worst = {
        "mae": max(m["mae"] for m in per_output),
        "rmse": max(m["rmse"] for m in per_output),
        "normalized_rmse": max(m["normalized_rmse"] for m in per_output),
        "max_abs_error": max(m["max_abs_error"] for m in per_output),
        "cosine_similarity": min(m["cosine_similarity"] for m in per_output),
        "snr_db": min(m["snr_db"] for m in per_output),
        "variance_ratio": min(m["variance_ratio"] for m in per_output),
    }
    agreements = [m["top1_agreement"] for m in per_output if "top1_agreement" in m]
    if agreements:
        worst["top1_agreement"] = min(agreements)
    return worst


def _one(expected: np.ndarray, got: np.ndarray) -> dict[str, float]:
    error = got - expected
    signal = float(np.mean(expected**2))
    noise = float(np.mean(error**2))
    e, g = expected.ravel(), got.ravel()
    norms = float(np.linalg.norm(e) * np.linalg.norm(g))
    metrics = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(noise)),
        "normalized_rmse": _normalized(float(np.sqrt(noise)), expected),
        "max_abs_error": float(np.max(np.abs(error))),
        "cosine_similarity": float(e @ g / norms) if norms else float(np.array_equal(e, g)),
        "snr_db": float(10 * np.log10(signal / noise)) if noise else float("inf"),
        "variance_ratio": _variance_ratio(expected, got),
    }
    if expected.ndim == 2 and expected.shape[-1] > 1:
        metrics["top1_agreement"] = float(np.mean(expected.argmax(-1) == got.argmax(-1)))
    return metrics


def _normalized(rmse: float, expected: np.ndarray) -> float:
    """RMSE in units of the float outputs' standard deviation across samples: 0 is exact, 1 is
    no better than always answering the mean."""
    spread = float(np.sqrt(np.var(expected, axis=0).mean()))
    if spread == 0.0:
        return 0.0 if rmse == 0.0 else float("inf")
    return rmse / spread


def _variance_ratio(expected: np.ndarray, got: np.ndarray) -> float:
    """Variance of the quantized outputs across samples over the float ones' (1.0 = same spread)."""
    spread = float(np.var(expected, axis=0).mean())
    if spread == 0.0:
        return 1.0
    return float(np.var(got, axis=0).mean()) / spread


def is_flat_line(metrics: dict[str, float]) -> bool:
    return metrics["variance_ratio"] < FLAT_LINE_VARIANCE_RATIO


def rmse_in_steps(expected: list[np.ndarray], got: list[np.ndarray], scales: list[float]) -> float:
    """The worst output's RMSE in steps of its int8 quantization (scale): an int8 output cannot
    come closer to float than about 0.3 step (rounding). inf when an output is not quantized."""
    steps = [
        float(np.sqrt(np.mean((g.astype(np.float64) - e) ** 2))) / scale if scale else float("inf")
        for e, g, scale in zip(expected, got, scales)
    ]
    return max(steps)
