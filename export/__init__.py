"""herbi.export: turn a trained Keras model into TFLite and ONNX artifacts, each checked."""
