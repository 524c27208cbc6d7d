"""LivePortrait-compatible keypoint math and an ONNX-friendly 3-D sampler (neural engine)."""
