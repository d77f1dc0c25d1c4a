"""The local pipeline: emulators, topology, functions-framework processes, orchestration.

`topology` declares topics and subscriptions on the Pub/Sub emulator exactly as infra/ declares
them in the cloud (both read shared/txguard/contract/names.py); `processes` runs the two functions with the
functions-framework CLI; `bridge` and `push` deliver the transactions subscription to the
enrichment function as Cloud Pub/Sub push does; `stack` wires everything for `txguard local up`.
`feed` publishes a stream into the stack and drains it, `ledger` accounts for every transaction
of a stream and `router` hands each output to its ledger: `txguard local up`, `txguard bench
e2e` and `txguard reliability` all go through them.
"""
