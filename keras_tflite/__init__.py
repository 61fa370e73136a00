"""keras-tflite: deployable full-int8 TFLite models from Keras, while they train."""

from importlib.metadata import PackageNotFoundError, version

from keras_tflite.board.targets import TARGETS, Target
from keras_tflite.conversion import ConversionError, ConversionResult, convert
from keras_tflite.data.calibration import DEFAULT_NUM_SAMPLES, MIN_RECOMMENDED_SAMPLES
from keras_tflite.qat import prepare_qat
from keras_tflite.quantization import QUANTIZATION_MODES
from keras_tflite.runtime.inspect import QuantizedTensor
from keras_tflite.runtime.litert import TFLiteModel
from keras_tflite.runtime.micro import MicroModel
from keras_tflite.runtime.streaming import StreamingModel
from keras_tflite.worker.protocol import Attempt
from keras_tflite.worker.strategies import STRATEGIES


def __getattr__(name: str):
    # The callback imports Keras; `import keras_tflite` stays cheap until it is used.
    if name == "TFLiteExportCallback":
        from keras_tflite.callbacks import TFLiteExportCallback

        return TFLiteExportCallback
    if name == "TFLiteExportHook":  # TF1 session training: imports TensorFlow
        from keras_tflite.session.hook import TFLiteExportHook

        return TFLiteExportHook
    if name == "convert_session":
        from keras_tflite.session.exporter import convert_session

        return convert_session
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
    "StreamingModel",
    "TARGETS",
    "TFLiteExportCallback",
    "TFLiteExportHook",
    "TFLiteModel",
    "Target",
    "convert",
    "convert_session",
    "prepare_qat",
]
