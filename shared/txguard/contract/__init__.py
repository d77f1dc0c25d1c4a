"""The contract every deployable shares: pydantic models of events and requests (`models`), ISO
codes (`codes`), resource names (`names`), settings from the environment (`settings`), the error
hierarchy (`errors`) and JSON log lines (`logs`). Imports nothing else of txguard."""
