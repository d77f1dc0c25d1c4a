"""Simulated wallet traffic with labelled fraud scenarios and drift (`core`): the data of the demo,
the tests and the default training set."""
