"""Point-in-time features, one implementation for serving and training.

`wallet`: a wallet's bounded history state, the features of a transaction as of just before it,
and the offline replay that training uses. Imports only the contract."""
