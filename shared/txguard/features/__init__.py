"""Point-in-time features, one implementation for serving and training. Imports only the contract.

`wallet`: a wallet's bounded history state and the features of a transaction as of just before
it (and `FEATURE_NAMES`, the model's input order). `counterparty`: time-bucketed aggregates of
counterparties, devices and wallet labels (cells and increments); `counterparty_windows`: their
point-in-time features. `labels`: what a label event
counts (the per-transaction ledger). `timeline`: the offline replay of transactions and labels
in time order that training uses, through the same functions the enrichment and label functions call.
"""
