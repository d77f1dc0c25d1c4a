"""Operator tools: dead-letter redrive (`redrive`) and the JSON Schema export of the contract
(`schemas`)."""
