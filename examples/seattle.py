"""The seed's data: hourly Seattle temperatures (vega_datasets ships them; nothing is downloaded)."""

from __future__ import annotations

from importlib import resources

import numpy as np

STEPS = 120  # five days of hourly readings


def hourly_temperatures() -> tuple[np.ndarray, np.ndarray]:
    """Returns (temperature in °F, hour of day) for 2010, one row an hour."""
    text = resources.files("vega_datasets").joinpath("_data/seattle-temps.csv").read_text()
    rows = [line.split(",") for line in text.splitlines()[1:] if line]
    hours = np.array([int(r[0].split(" ")[1].split(":")[0]) for r in rows], np.float32)
    return np.array([float(r[1]) for r in rows], np.float32), hours


def windows(steps: int = STEPS):
    """Windows of `steps` hours x 3 features (scaled temperature, sin and cos of the hour),
    each labelled with the next hour's temperature; split 80/20 in time.

    Returns:
        (x_train, y_train), (x_val, y_val), (mean, std) to turn predictions back into °F.
    """
    temps, hours = hourly_temperatures()
    mean, std = float(temps.mean()), float(temps.std())
    angle = 2 * np.pi * hours / 24
    features = np.stack([(temps - mean) / std, np.sin(angle), np.cos(angle)], axis=1)
    count = len(temps) - steps
    index = np.arange(steps)[None, :] + np.arange(count)[:, None]
    x = features[index].astype(np.float32)
    y = ((temps[steps:] - mean) / std)[:, None].astype(np.float32)
    split = int(0.8 * count)
    return (x[:split], y[:split]), (x[split:], y[split:]), (mean, std)


def report(best, std: float, where: str) -> None:
    """Prints where the deployable int8 model is (`where`: its epoch or step), what it needs on
    the board, and its error in °F, in TFLite Micro and LiteRT, from its manifest."""
    import json

    manifest = json.loads((best / "manifest.json").read_text())
    metrics = manifest["metrics"]
    print(f"\nDeployable model: {best}/ ({where.format(**manifest)})")
    device = manifest["device"]
    arenas = device["arena_bytes"]
    print(
        f"  {manifest['model_bytes']} bytes, ops {manifest['ops']}; tensor arena on a Cortex-M "
        f"{arenas['reference']} bytes (reference kernels), {arenas['cmsis_nn']} (CMSIS-NN)"
    )
    target = device.get("target")
    if target and target["latency_ms"] is not None:
        print(f"  ~{target['latency_ms']:.0f} ms per forecast on {target['board']} (estimated)")
    print(
        f"  forecast MAE {metrics['tflite_val_mae'] * std:.2f} °F (int8, TFLite Micro); "
        f"int8 vs float {metrics['tflite_mae_vs_float'] * std:.3f} °F in TFLite Micro, "
        f"{metrics['tflite_litert_mae_vs_float'] * std:.3f} °F in LiteRT"
    )
