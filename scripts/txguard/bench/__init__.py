"""`txguard bench score`: the scoring function measured against plain scikit-learn, a constant
functions-framework function and MLServer, with the same model and payloads (docs/scoring.md)."""
