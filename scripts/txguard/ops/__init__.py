"""Operator tools: dead-letter redrive (`redrive`), the JSON Schema export of the contract
(`schemas`), and the late counterparty updates with the decisions they missed (`late_updates`)."""
