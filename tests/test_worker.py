"""A converter crash or hang is survived: real worker processes, real signals, real converter."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, sample_inputs

import keras_tflite

pytestmark = pytest.mark.slow  # real conversions and training


def test_converter_segfault_is_survived_and_next_strategy_converts(monkeypatch):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", "keras_frozen:segfault")
    model = build("mlp")
    result = keras_tflite.convert(model, sample_inputs(model, 50))
    crashed = result.attempts[0]
    assert (crashed.strategy, crashed.status) == ("keras_frozen", "crashed")
    assert "SIGSEGV" in crashed.reason
    assert result.strategy == "keras_saved_model"


def test_converter_hang_is_killed_after_the_timeout(monkeypatch):
    monkeypatch.setenv("KERAS_TFLITE_INJECT_FAULT", "keras_frozen:hang")
    model = build("mlp")
    result = keras_tflite.convert(model, sample_inputs(model, 50), timeout=5)
    hung = result.attempts[0]
    assert (hung.strategy, hung.status) == ("keras_frozen", "timed out")
    assert 5 <= hung.seconds < 60
    assert result.strategy == "keras_saved_model"


def test_real_converter_crash_raises_conversion_error_and_leaves_the_model_untouched():
    # Keras 3's own GRU loop segfaults the int8 calibrator (docs/known-limits.md): the real thing.
    model = build("gru")
    data = sample_inputs(model, 50)
    weights = [w.copy() for w in model.get_weights()]
    before = model.predict(data["series"][:4], verbose=0)
    with pytest.raises(
        keras_tflite.ConversionError, match="keras_saved_model: crashed.*SIGSEGV"
    ) as error:
        keras_tflite.convert(model, data, strategies=["keras_saved_model"])
    assert error.value.attempts[0].status == "crashed"
    for w, original in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(w, original)
    np.testing.assert_array_equal(model.predict(data["series"][:4], verbose=0), before)


def test_unknown_strategy_is_refused_before_any_work():
    with pytest.raises(
        ValueError, match=r"Expected strategies from \[.*\]. Received unknown: \['fastest'\]"
    ):
        keras_tflite.convert(build("mlp"), np.zeros((4, 8), np.float32), strategies=["fastest"])


def _exporter(model, **options):
    from keras_tflite.exporter import Exporter

    data = sample_inputs(model, 64)
    return Exporter(model, data, data, num_calibration_samples=64, timeout=120, **options)


def test_one_worker_serves_every_export_and_a_crash_mid_job_is_recovered():
    import os
    import signal
    import threading
    import time

    model = build("mlp")
    exporter = _exporter(model)
    try:
        first = exporter.export(model.get_weights())
        second = exporter.export(model.get_weights())
        assert first.error is None and second.error is None
        assert exporter.worker.started == 1  # TensorFlow imported and the model rebuilt once

        pid = exporter.worker.pid

        def crash_when_converting():
            deadline = time.time() + 60
            while time.time() < deadline:
                for events in exporter._work.glob("job_*/progress.jsonl"):
                    if '"start"' in events.read_text():
                        os.kill(pid, signal.SIGSEGV)
                        return
                time.sleep(0.01)

        killer = threading.Thread(target=crash_when_converting)
        killer.start()
        crashed = exporter.export(model.get_weights())
        killer.join()
        statuses = [(a.strategy, a.status) for a in crashed.result.attempts]
        assert statuses[0] == ("keras_frozen", "crashed")  # recorded, and the next one ran
        assert "SIGSEGV" in crashed.result.attempts[0].reason
        after = exporter.export(model.get_weights())
        assert after.error is None and after.result.strategy == "keras_frozen"
        assert exporter.worker.pid != pid
    finally:
        exporter.close()
    assert exporter.worker.pid is None  # closed with the exporter


def test_the_worker_is_recycled_after_max_jobs_and_past_its_memory_bound():
    from keras_tflite.worker import supervisor

    model = build("mlp")
    exporter = _exporter(model)
    exporter.worker.close()
    exporter.worker = supervisor.Worker(max_jobs=2)
    try:
        for _ in range(3):
            assert exporter.export(model.get_weights()).error is None
        assert exporter.worker.started == 2
        exporter.worker.close()
        exporter.worker = supervisor.Worker(max_rss_growth_mb=-1.0)  # any growth is too much
        for _ in range(2):
            assert exporter.export(model.get_weights()).error is None
        assert exporter.worker.started == 2
    finally:
        exporter.close()


def test_convert_calls_in_one_process_share_one_worker():
    from keras_tflite.worker import shared

    model = build("mlp")
    data = sample_inputs(model, 50)
    keras_tflite.convert(model, data)
    worker = shared.current()
    pid = worker.pid
    result = keras_tflite.convert(model, data, quantization="float32")
    assert shared.current() is worker and worker.pid == pid  # TensorFlow imported once
    assert result.quantization == "float32"
