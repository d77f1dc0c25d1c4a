"""What the scoring function runs: the ONNX runtime and its fast path (`runtime`, `vectorize`),
thresholds and reasons (`scorer`, `reasons`), the HTTP service and routes (`service`), the
OpenAPI document (`openapi`) and the per-request log line (`request_log`). No scikit-learn."""
