"""keras-tflite: deployable full-int8 TFLite models from Keras, while they train."""

from importlib.metadata import PackageNotFoundError, version

from keras_tflite._calibration import DEFAULT_NUM_SAMPLES, MIN_RECOMMENDED_SAMPLES
from keras_tflite._convert import ConversionError, ConversionResult, convert
from keras_tflite._inspect import QuantizedTensor
from keras_tflite._micro import MicroModel
from keras_tflite._quantization import QUANTIZATION_MODES
from keras_tflite._runtime import TFLiteModel
from keras_tflite._strategies import STRATEGIES
from keras_tflite._tfmot import prepare_qat
from keras_tflite._worker import Attempt


def __getattr__(name: str):
    # The callback imports Keras; `import keras_tflite` stays cheap until it is used.
    if name == "TFLiteExportCallback":
        from keras_tflite.callbacks import TFLiteExportCallback

        return TFLiteExportCallback
    raise AttributeError(f"module 'keras_tflite' has no attribute {name!r}")


try:
    __version__ = version("keras-tflite")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Attempt",
    "ConversionError",
    "ConversionResult",
    "DEFAULT_NUM_SAMPLES",
    "MIN_RECOMMENDED_SAMPLES",
    "MicroModel",
    "QUANTIZATION_MODES",
    "QuantizedTensor",
    "STRATEGIES",
    "TFLiteExportCallback",
    "TFLiteModel",
    "convert",
    "prepare_qat",
]
