"""Running a streaming model (`convert(..., streaming=True)`): one time step per call, the
recurrent state carried between calls, as a sensor loop on a microcontroller runs it."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_tflite.runtime.flatbuffer import model_io
from keras_tflite.runtime.litert import TFLiteModel
from keras_tflite.runtime.micro import MicroModel

RUNTIMES = {"micro": MicroModel, "litert": TFLiteModel}


class StreamingModel:
    """A streaming `.tflite` model, stepped one sample at a time in TFLite Micro or LiteRT.

    The model's inputs are one time step and the recurrent state; its outputs, the window
    model's output at that step and the next state. This class keeps the state (in float: each
    step dequantizes the next state and quantizes it as the state input, as the generated C++
    helper does on a device).

    Args:
        model: The flatbuffer bytes or a path to a streaming `.tflite` file.
        runtime: "micro" (TFLite Micro, what the microcontroller runs) or "litert".

    Raises:
        ValueError: for a model that keras-tflite did not convert with `streaming=True`, or an
            unknown runtime.

    Example:
    ```python
    stream = keras_tflite.StreamingModel(result.tflite)
    stream.reset()
    for sample in readings:           # each of shape (features,)
        forecast = stream.step(sample)
    ```
    """

    def __init__(self, model: bytes | str | os.PathLike, runtime: str = "micro"):
        if runtime not in RUNTIMES:
            raise ValueError(
                f"Expected runtime to be one of {sorted(RUNTIMES)}. Received: {runtime!r}."
            )
        self.runner = RUNTIMES[runtime](model)
        pairs = (model_io(self.runner.tflite) or {}).get("state")
        if not pairs:
            raise ValueError(
                "Expected a streaming model (keras_tflite.convert(..., streaming=True)). "
                "Received a .tflite file without recurrent state."
            )
        # "internal": fused LSTMs keep the state in their variable tensors (one stream).
        self.internal = pairs == "internal"
        self.runner.keeps_state = self.internal
        pairs = [] if self.internal else pairs
        names = [t.name for t in self.runner.inputs]
        outputs = [t.name for t in self.runner.outputs]
        self._state_inputs = [names.index(given) for given, _ in pairs]
        self._state_outputs = [outputs.index(produced) for _, produced in pairs]
        self._sample_input = next(i for i in range(len(names)) if i not in self._state_inputs)
        self.sample = self.runner.inputs[self._sample_input]
        self.outputs = [
            t for i, t in enumerate(self.runner.outputs) if i not in self._state_outputs
        ]
        self._states: list[np.ndarray] | None = None
        self.reset()

    def reset(self, batch: int = 1) -> None:
        """Back to the initial (zero) state, for `batch` independent streams (one, for a model
        that keeps its state inside)."""
        if self.internal:
            self.runner.reset_state()
        self._states = [
            np.zeros((batch, *self.runner.inputs[i].shape[1:]), np.float32)
            for i in self._state_inputs
        ]

    def step(self, sample: Any) -> np.ndarray | list[np.ndarray]:
        """One time step: `sample` of shape (features,) or (streams, features), float.

        Returns:
            The outputs at this step (float; one array for a single-output model).
        """
        x = np.asarray(sample, np.float32)
        per_sample = self.sample.shape[2:] if self.internal else self.sample.shape[1:]
        single = x.ndim == len(per_sample)
        x = x[None] if single else x
        if self.internal and len(x) != 1:
            raise ValueError(
                "Expected one stream: this model keeps its state inside (fused LSTM ops). "
                f"Received samples of {len(x)} streams; step them through predict()."
            )
        if tuple(x.shape[1:]) != tuple(per_sample):
            raise ValueError(
                f"Expected a sample of shape {tuple(per_sample)} (one time step) or "
                f"(streams, {', '.join(map(str, per_sample))}). Received: "
                f"{tuple(np.shape(sample))}."
            )
        if self._states and len(x) != len(self._states[0]):
            self.reset(len(x))
        arrays: list[np.ndarray] = [np.empty(0)] * len(self.runner.inputs)
        arrays[self._sample_input] = x[:, None] if self.internal else x
        for position, state in zip(self._state_inputs, self._states):
            arrays[position] = state
        results = self.runner.predict(arrays)
        results = results if isinstance(results, list) else [results]
        self._states = [results[i] for i in self._state_outputs]
        outputs = [r for i, r in enumerate(results) if i not in self._state_outputs]
        outputs = [o[0] for o in outputs] if single else outputs
        return outputs[0] if len(outputs) == 1 else outputs

    def predict(self, sequences: Any, all_steps: bool = False) -> np.ndarray | list[np.ndarray]:
        """Each sequence [streams, time, features] from the initial state, stepped through.

        Returns:
            The outputs at the last step (as the window model's), or at every step
            ([streams, time, ...]) with `all_steps`.
        """
        sequences = np.asarray(sequences, np.float32)
        per_sample = self.sample.shape[2:] if self.internal else self.sample.shape[1:]
        if sequences.ndim != len(per_sample) + 2:
            raise ValueError(
                f"Expected sequences of shape (streams, time, "
                f"{', '.join(map(str, per_sample))}). Received: {sequences.shape}."
            )
        if self.internal:  # one stream at a time
            results = [self._one_stream(s, all_steps) for s in sequences]
            outputs = [np.concatenate(parts) for parts in zip(*results)]
            return outputs[0] if len(outputs) == 1 else outputs
        self.reset(len(sequences))
        steps = []
        for t in range(sequences.shape[1]):
            out = self.step(sequences[:, t])
            steps.append(out if isinstance(out, list) else [out])
        self.reset()
        if all_steps:
            outputs = [np.stack([s[k] for s in steps], axis=1) for k in range(len(steps[0]))]
        else:
            outputs = steps[-1]
        return outputs[0] if len(outputs) == 1 else outputs

    def _one_stream(self, sequence: np.ndarray, all_steps: bool) -> list[np.ndarray]:
        self.reset()
        steps = []
        for sample in sequence:
            out = self.step(sample[None])
            steps.append(out if isinstance(out, list) else [out])
        self.reset()
        if all_steps:
            return [np.stack([s[k] for s in steps], axis=1) for k in range(len(steps[0]))]
        return steps[-1]

    @property
    def arena_bytes(self) -> int:
        """TFLite Micro's arena for one step (after at least one step)."""
        return self.runner.arena_bytes
