"""Point-in-time features, one implementation for serving and training. Imports only the contract.

`wallet`: a wallet's bounded history state and the features of a transaction as of just before
it (and `FEATURE_NAMES`, the model's input order). `counterparty`: time-bucketed aggregates of
counterparties, devices and wallet labels (cells and increments); `counterparty_windows`: their
point-in-time features. `label_ledger`: what a label event counts (the per-transaction ledger).
`timeline`: the offline replay of transactions and labels in time order that training uses,
through the same functions the enrichment and label functions call. The `*_columns` modules are
the offline twins of `wallet`, `counterparty` and `timeline` (whole tables at once, equal results):
no function imports them, so no function archive ships them.
"""
