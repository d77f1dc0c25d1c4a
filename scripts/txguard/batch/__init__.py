"""Batch work over whole files: scoring enriched transactions from JSONL/CSV (`score_file`)."""
