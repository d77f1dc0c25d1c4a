"""Batch work over whole files: `txguard batch run|status` (an Apache Beam pipeline, locally or on
Dataflow) and `txguard score-file` (one process); docs/batch.md has the module map."""
