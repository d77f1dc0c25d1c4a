"""Training and evaluation: datasets (`dataset`), the rules baseline (`baseline`), metrics
(`metrics`), the quality gate (`gate`), ONNX export (`onnx_export`), what a version carries for
production (`lifecycle`: parity probe, drift reference, `pictures`) and `train`, which publishes a
gated version to the registry."""
