"""The local pipeline: emulators, topology, functions-framework processes, orchestration.

`topology` declares topics and subscriptions on the Pub/Sub emulator exactly as infra/ declares
them in the cloud (both read shared/txguard/contract/names.py); `processes` runs the two functions with the
functions-framework CLI; `stack` wires everything for `txguard local up`.
"""
