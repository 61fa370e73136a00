"""`python -m keras_tflite.cli`: the `keras-tflite` command."""

import sys

from keras_tflite.cli import main

sys.exit(main())
