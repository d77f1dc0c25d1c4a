"""The analyst console: review queue, live decisions, manual scoring and models, in a browser.

Its own deployable (a Cloud Run service built from functions/console, docs/console.md): no function
archive ships it, and it ships nothing the scoring function loads.
"""
