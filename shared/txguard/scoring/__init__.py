"""What the scoring function runs: the ONNX runtime and its fast path (`runtime`, `vectorize`),
thresholds and reasons (`scorer`, `reasons`), the one way to a checked scorer (`loading`), what the
process serves (`state`), the HTTP transport, routes and service (`http`, `routes`, `context`,
`service`), alias following, drift and shadow scoring (`follower`, `observer`, `drift`, `psi`), the
OpenAPI document (`openapi`) and the per-request log line (`request_log`). No scikit-learn."""
