"""txguard core: the contract, features, model runtime, registry, stores, settings and logging.

Importable and testable without any server. Never imports from functions/, infra/ or scripts/.
"""
