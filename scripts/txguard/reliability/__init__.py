"""`txguard reliability`: failure scenarios on the local emulator stack, every message accounted for.

- `poison`: the malformed-message corpus (many kinds, each rejected by shared/txguard/enrichment/envelope.py);
- `ledger`: what became of each transaction (decided, invalid, dead-lettered, redriven);
- `history_check`: double counting measured against the offline sequential replay;
- `outages`: stopping and restarting the scoring function and the Firestore emulator;
- `bad_model`: corrupt and missing registry artifacts against fresh and running scoring functions;
- `scenarios`: the six scenarios; `runner`: one stack, the scenarios in turn, the verdict;
- `report`: the table, the last-line JSON and docs/reliability.md.
"""

# In run order; `scenarios.SCENARIOS` implements them (kept here so `txguard --help` imports nothing heavy).
SCENARIO_NAMES = ("duplicates", "poison", "scoring_outage", "store_outage", "bad_model", "burst")
