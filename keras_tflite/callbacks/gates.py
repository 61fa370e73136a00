"""Whether an export may become the deployable model, judged on TFLite Micro's outputs.

TFLite Micro's Python interpreter computes what the microcontroller computes (measured bit for
bit against the C++ library and CMSIS-NN on an emulated Cortex-M4); LiteRT, the desktop runtime,
differs from it by 1-8 output steps on healthy models and was flat where TFLite Micro was right.
So every gate reads TFLite Micro's metrics, and LiteRT's only ever produce notes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_tflite.runtime.fidelity import FLAT_LINE_VARIANCE_RATIO, rmse_in_steps

# An export whose TFLite Micro outputs stray from float by more than this many standard
# deviations of the float outputs (RMSE over spread) is not a faithful copy. Healthy models of
# nine architectures measured 0.012-0.069, the same models calibrated on their first 5 samples
# 0.25-0.43 (LSTM, GRU, BiLSTM, stacked, two-input, sine MLP; benchmarks/faithfulness.py).
DEFAULT_MAX_NORMALIZED_RMSE = 0.15
# An error within one int8 output step is int8's resolution, not unfaithfulness: a barely trained
# classifier whose probabilities all sit within a few steps of 0.5 measured normalized RMSE 0.21
# at 0.3 steps (benchmarks/faithfulness.py).
WITHIN_RESOLUTION_STEPS = 1.0
# Runtimes further apart than this many output steps get a note (healthy models: 0-8).
RUNTIME_GAP_NOTE_LSB = 4.0


@dataclasses.dataclass(frozen=True)
class Advice:
    """What to do about a refused export, in the words of the caller's API."""

    more_samples: str = "pass more representative samples, or num_calibration_samples='auto'"
    find_the_layer: str = "layer_errors=True shows which layer loses the signal"


CLI_ADVICE = Advice(
    more_samples="pass a --calibration file with more samples",
    find_the_layer="the callback's layer_errors=True shows which layer loses the signal",
)


@dataclasses.dataclass(frozen=True)
class Gates:
    """Limits an exportable model must meet. None disables one."""

    max_normalized_rmse: float | None = DEFAULT_MAX_NORMALIZED_RMSE
    max_error: float | None = None
    max_model_bytes: int | None = None
    max_arena_bytes: int | None = None
    max_latency_ms: float | None = None


def refusal(
    judged: Any,
    logs: dict[str, float],
    gates: Gates,
    shortfall: str | None,
    advice: Advice = Advice(),
) -> str | None:
    """Why the export is not deployable, or None when it is.

    Args:
        judged: The export's `Judged`.
        logs: Its `tflite_*` logs (TFLite Micro's unprefixed, LiteRT's as `tflite_litert_*`).
        gates: The limits.
        shortfall: Why the calibration samples may be too few, when they may be.
        advice: What to do about it, in the caller's words.
    """
    if judged.error:
        return judged.error
    if judged.micro_error:
        if judged.micro_error.startswith("TFLite Micro crashed"):  # the worker's words suffice
            return judged.micro_error
        return f"TFLite Micro cannot run it: {judged.micro_error}"
    ratio = logs["tflite_variance_ratio_vs_float"]
    if ratio < FLAT_LINE_VARIANCE_RATIO:
        cause = _cause(judged, shortfall, advice)
        if _spread_in_steps(judged) < 1.0:
            cause = (
                " (the float outputs vary by less than one int8 output step: nothing to "
                "represent yet, typical of early training)"
            )
        return f"flat-line output in TFLite Micro: int8 variance is {ratio:.3f} of float's" + cause
    error = logs["tflite_normalized_rmse_vs_float"]
    if gates.max_normalized_rmse is not None and error > gates.max_normalized_rmse:
        scales = [t.scale for t in judged.result.outputs]
        steps = rmse_in_steps(judged.float_outputs, judged.micro_outputs, scales)
        if steps > WITHIN_RESOLUTION_STEPS:  # else the float outputs barely vary (early training)
            return (
                f"not a faithful copy in TFLite Micro: normalized RMSE vs float {error:.3g} > "
                f"max_normalized_rmse {gates.max_normalized_rmse:g} (the error is {error:.0%} of "
                f"the float outputs' spread, {steps:.1f} int8 output steps)"
                + _cause(judged, shortfall, advice)
            )
    mae = logs["tflite_mae_vs_float"]
    if gates.max_error is not None and mae > gates.max_error:
        return f"TFLite Micro MAE vs float {mae:.4g} > max_error {gates.max_error:g}"
    for key, limit in (
        ("model_bytes", gates.max_model_bytes),
        ("arena_bytes", gates.max_arena_bytes),
    ):
        value = logs.get(f"tflite_{key}")
        if limit is not None and value is not None and value > limit:
            return f"{key} {int(value)} > max_{key} {limit}: it does not fit the target"
    latency = logs.get("tflite_latency_ms")
    if gates.max_latency_ms is not None and latency is None:
        why = (judged.device or {}).get("not_estimated") or "no instruction estimate"
        return f"no time estimate to hold to max_latency_ms: {why}"
    if gates.max_latency_ms is not None and latency > gates.max_latency_ms:
        return (
            f"latency_ms {latency:.3g} > max_latency_ms {gates.max_latency_ms:g}: too slow for "
            "the target (estimated from instructions per op; docs/board.md)"
        )
    return None


def _spread_in_steps(judged: Any) -> float:
    """The float outputs' standard deviation across samples, in int8 output steps (the widest)."""
    spreads = [
        float(np.sqrt(np.var(e, axis=0).mean())) / t.scale if t.scale else float("inf")
        for e, t in zip(judged.float_outputs, judged.result.outputs)
    ]
    return max(spreads)


def _cause(judged: Any, shortfall: str | None, advice: Advice) -> str:
    """What to do about an int8 model that strays: blame calibration only on evidence."""
    result = judged.result
    if result.quantization_aware:
        return " (its ranges were learned in quantization-aware training: train it longer)"
    if shortfall:
        return f" ({shortfall}: {advice.more_samples})"
    return (
        f" although calibration saw {result.num_calibration_samples} samples; "
        f"{advice.find_the_layer}"
    )


def notes(judged: Any, logs: dict[str, float]) -> dict[str, str]:
    """What a person should know about an export that does not change the verdict, by kind."""
    if judged.result is None:
        return {}
    found = {}
    if judged.litert_note:  # LiteRT could not run it, or not with XNNPACK
        found["litert"] = judged.litert_note
    islands = float_islands(judged.result)
    if islands:
        found["float_islands"] = islands
    litert_ratio = logs.get("tflite_litert_variance_ratio_vs_float")
    micro_ratio = logs.get("tflite_variance_ratio_vs_float")
    if (
        litert_ratio is not None
        and micro_ratio is not None
        and litert_ratio < FLAT_LINE_VARIANCE_RATIO <= micro_ratio
    ):
        found["litert_flat"] = (
            f"LiteRT's int8 output is flat (variance {litert_ratio:.3f} of float's) while TFLite "
            "Micro's follows float: LiteRT's kernels differ, the microcontroller is fine"
        )
    gap = logs.get("tflite_litert_max_lsb_vs_micro")
    if gap is not None and gap > RUNTIME_GAP_NOTE_LSB:
        found["runtime_gap"] = (
            f"LiteRT's outputs differ from TFLite Micro's by up to {gap:g} output steps "
            f"({closer_to_float(logs)} is closer to float); exports are judged on TFLite Micro, "
            "the microcontroller's runtime"
        )
    return found


def float_islands(result: Any) -> str | None:
    """Float islands inside an int8 model: a QUANTIZE/DEQUANTIZE mid-graph or a float kernel."""
    if result.quantization not in ("int8", "int16x8"):
        return None
    islands = [op for op in result.ops if op in ("DEQUANTIZE", "QUANTIZE")]
    if not islands:
        return None
    loop = ""
    if "WHILE" in result.ops:
        loop = " (the WHILE boundary of a GRU/SimpleRNN loop stays float)"
    return f"{len(islands)} QUANTIZE/DEQUANTIZE op(s) inside the int8 model: float islands{loop}"


def closer_to_float(logs: dict[str, float]) -> str | None:
    """Which runtime's int8 outputs are nearer the float model's (by MAE); None unless both
    runtimes ran the model."""
    micro, litert = logs.get("tflite_mae_vs_float"), logs.get("tflite_litert_mae_vs_float")
    if micro is None or litert is None:
        return None
    if litert == micro:
        return "neither (equal)"
    return "LiteRT" if litert < micro else "TFLite Micro"
