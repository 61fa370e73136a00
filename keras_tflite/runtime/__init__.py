"""Running and reading .tflite models: LiteRT and TFLite Micro on float data, the flatbuffer's
ops, inputs and outputs (in the Keras model's order), and fidelity against float."""
