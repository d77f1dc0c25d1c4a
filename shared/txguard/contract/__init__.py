"""The contract every deployable shares: pydantic models of events and requests (`models`), ISO
codes (`codes`), resource names (`names`), settings from the environment (`settings`), the error
hierarchy (`errors`), JSON log lines (`logs`) and the trace a transaction carries across the
functions (`trace`). Imports nothing else of txguard."""
