"""A TF1 session's model to TFLite: frozen here, converted and judged in the worker, as a saved
frozen graph is (`worker/graphs.py`)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from keras_tflite.board import Board
from keras_tflite.conversion import DEFAULT_TIMEOUT, ConversionResult, describe_result, run_job
from keras_tflite.data import calibration as samples
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES
from keras_tflite.data.validation import DEFAULT_VALIDATION_SAMPLES, validation_samples
from keras_tflite.judged import Judged, read_judged, since
from keras_tflite.quantization import CALIBRATED_MODES, check_mode
from keras_tflite.session.graph_io import freeze, resolve
from keras_tflite.worker import protocol, shared, supervisor

_STRATEGIES = ["frozen_graph"]
_GRAPH_FILE = "frozen_graph.pb"


class SessionExporter:
    """What every export of one session's model shares: its inputs and outputs, calibration and
    validation samples, and a worker. `export(frozen)` converts and judges one frozen graph.

    Raises:
        ValueError: for names that match no node, or data that does not match the inputs.
    """

    framework = "graph"
    trained_on = "tensorflow (TF1 session)"

    def __init__(
        self,
        graph: Any,
        representative_data: Any,
        validation_data: Any,
        *,
        inputs: Any = None,
        outputs: Any = None,
        quantization: str = "int8",
        num_calibration_samples: int = DEFAULT_NUM_SAMPLES,
        num_validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
        seed: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
        niceness: int = 0,
        worker: supervisor.Worker | None = None,
        board: Board = Board(),
    ):
        check_mode(quantization)
        self.board = board  # the arena and instructions reported are this board's
        self.inputs, self.outputs = resolve(graph, inputs, outputs)
        self.quantization, self.seed, self.timeout = quantization, seed, timeout
        calibrated = quantization in CALIBRATED_MODES
        if representative_data is None and (calibrated or validation_data is None):
            raise ValueError(
                f"Expected representative_data for quantization={quantization!r}: int8 "
                "calibration needs samples of the inputs. Received: None."
            )
        self.calibration = samples.collect(
            representative_data if representative_data is not None else validation_data,
            self.inputs,
            num_samples=num_calibration_samples,
            seed=seed,
            calibrates=calibrated,
        )
        judged_on = representative_data if validation_data is None else validation_data
        self.validation = validation_samples(judged_on, self.inputs, num_validation_samples, seed)
        self._work = Path(tempfile.mkdtemp(prefix="keras_tflite_session_"))
        self._owns_worker = worker is None
        self.worker = worker or supervisor.Worker(niceness=niceness)
        self.worker.start()

    def export(self, frozen: bytes, reference: Any = None) -> Judged:
        """Converts one frozen graph (`graph_io.freeze`) and judges it on the validation inputs;
        a failure is the `Judged`'s error, never raised."""
        began = time.perf_counter()
        try:
            return self._run(frozen, judge=True, began=began)
        except Exception as error:  # noqa: BLE001 - an export failure never stops training
            return Judged(None, {}, [], [], None, f"{type(error).__name__}: {error}", since(began))

    def convert(self, frozen: bytes) -> ConversionResult:
        """Converts one frozen graph without judging it.

        Raises:
            ConversionError: when it does not convert.
        """
        return self._run(frozen, judge=False, began=time.perf_counter()).result

    def _run(self, frozen: bytes, *, judge: bool, began: float) -> Judged:
        job_dir = Path(tempfile.mkdtemp(prefix="job_", dir=self._work))
        try:
            (job_dir / _GRAPH_FILE).write_bytes(frozen)
            source = {
                "kind": "pb",
                "path": str(job_dir / _GRAPH_FILE),
                "outputs": self.outputs,
                "input_shapes": {i.name: [1, *i.shape] for i in self.inputs},
                "trust": False,
            }
            protocol.Job(
                framework=self.framework,
                inputs=[i.to_json() for i in self.inputs],
                quantization=self.quantization,
                source=source,
            ).write(job_dir)
            protocol.write_arrays(job_dir / protocol.CALIBRATION_FILE, self.calibration.arrays)
            if judge:
                protocol.write_arrays(job_dir / protocol.VALIDATION_FILE, self.validation.inputs)
            tflite, attempts = run_job(
                job_dir, _STRATEGIES, self.framework, self.timeout, worker=self.worker
            )
            calibrated = self.quantization in CALIBRATED_MODES
            result = describe_result(
                tflite,
                attempts,
                quantization=self.quantization,
                num_calibration_samples=self.calibration.num_samples if calibrated else 0,
                seed=self.seed,
                batch_size=1,
                facts={},
            )
            if not judge:
                return Judged(result, {}, [], [], None, None, since(began))
            return read_judged(job_dir, result, began, self.board)
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)

    def float_reference(self, model: Any) -> None:
        return None  # the worker runs the frozen graph itself

    def close(self) -> None:
        if self._owns_worker:
            self.worker.close()
        shutil.rmtree(self._work, ignore_errors=True)


def convert_session(
    session: Any,
    representative_data: Any = None,
    *,
    inputs: Any = None,
    outputs: Any = None,
    quantization: str = "int8",
    num_calibration_samples: int = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
) -> ConversionResult:
    """Converts the model in a live TF1 session (`tf.compat.v1.Session`) to TFLite.

    The variables are read from the session (frozen into constants) here; conversion runs in a
    worker process, as `convert()`'s does.

    Args:
        session: The session holding the trained variables.
        representative_data: Calibration samples: an array (one input), a dict by placeholder
            name, `(x, y)` tuples or a `tf.data.Dataset`.
        inputs: Placeholders (tensors or names). Defaults to those the outputs need.
        outputs: Output tensors or names. Defaults to the graph's only output candidate.
        quantization: As for `convert()`. Defaults to "int8".
        num_calibration_samples: Samples drawn for calibration. Defaults to 500.
        seed: Seed of the calibration draw. Defaults to 0.
        timeout: Seconds the conversion may run. Defaults to 600.

    Returns:
        A `ConversionResult`.

    Raises:
        ValueError: for names that match no node, several candidate outputs, or data that does
            not match the inputs.
        ConversionError: when the frozen graph does not convert.

    Example:
    ```python
    with tf.compat.v1.Session() as sess:
        ...  # train
        result = keras_tflite.convert_session(sess, x_train, outputs=[prediction])
    result.save("model.tflite")
    ```
    """
    worker = shared.take()
    try:
        exporter = SessionExporter(
            session.graph,
            representative_data,
            None,
            inputs=inputs,
            outputs=outputs,
            quantization=quantization,
            num_calibration_samples=num_calibration_samples,
            seed=seed,
            timeout=timeout,
            worker=worker,
        )
        try:
            return exporter.convert(freeze(session, exporter.outputs))
        finally:
            exporter.close()
    finally:
        shared.give_back()
