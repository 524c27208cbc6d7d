"""The LivePortrait neural engine: checkpoint-compatible networks, export, ONNX Runtime and
TensorRT back ends. The runtime modules (renderer, back ends, mapping, crop) need no torch."""
