"""Keras 3 models trained on JAX and torch: rebuilt on TensorFlow to convert, judged on their own
backend's outputs. Each training runs in its own process (Keras picks its backend at import)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_tflite import MicroModel
from keras_tflite.deploy.artifacts import read_manifest

pytestmark = pytest.mark.slow  # real conversions and training

_TRAIN = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from keras_tflite import TFLiteExportCallback

    directory = sys.argv[1]
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.3, (400, 24, 3)), axis=1).astype("float32")
    y = x[:, -4:, :1].mean(axis=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((24, 3), name="series"), keras.layers.LSTM(8), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    callback = TFLiteExportCallback(directory, x[:300], (x[300:], y[300:]), verbose=0)
    model.fit(x[:300], y[:300], epochs=1, batch_size=32, callbacks=[callback], verbose=0)
    np.savez(f"{directory}/backend.npz", x=x[300:], float=model.predict(x[300:], verbose=0))
    print(keras.backend.backend())
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_model_trained_on_another_backend_exports_judged_on_its_own_outputs(tmp_path, backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    run = subprocess.run(
        [sys.executable, "-c", _TRAIN, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-1] == backend

    manifest = read_manifest(tmp_path / "best")
    assert manifest["trained_on"] == f"keras ({backend})"
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in manifest["ops"]
    metrics = manifest["metrics"]
    assert metrics["tflite_rebuild_max_abs_diff"] < 1e-4  # TensorFlow rebuilt the same model
    # The int8 model, run in TFLite Micro here, against the training backend's own predictions:
    # the error the callback recorded is exactly this one.
    with np.load(tmp_path / "backend.npz") as stored:
        x, expected = stored["x"], stored["float"]
    micro = MicroModel((tmp_path / "best" / "model.tflite").read_bytes()).predict(x)
    assert float(np.mean(np.abs(micro - expected))) == pytest.approx(
        metrics["tflite_mae_vs_float"], rel=1e-4
    )
    assert metrics["tflite_mae_vs_float"] < 0.05 * float(np.std(expected))
