"""`txguard reliability`: failure scenarios on the local emulator stack, every message accounted for.

- `poison`: the malformed-message corpus (many kinds, each rejected by shared/txguard/enrichment/envelope.py);
- `history_check`: double counting, and each transaction's features, against the offline replay;
- `outages`: stopping and restarting the scoring function and the Firestore emulator, killing
  enrichment workers;
- `bad_model`: corrupt and missing registry artifacts against fresh and running scoring functions;
- `scenarios`: duplicates, poison, outages, bad model, burst; `faults`: enrichment workers killed,
  deliveries failed at random; `promotion`: promote and roll back a model version mid-stream, no
  redeploy; `labels` (+ `label_events`, its label corpus): duplicated, reversed, early, unknown and
  malformed labels, the store's label counters against the offline replay; `label_poisoning`: forged,
  wrong-route and mismatched labels parked, a reversal storm and a fraud burst held, then reviewed,
  the counters against the replay of what was applied; `counterparty`: a hot
  counterparty while workers die, the Bigtable emulator frozen; `checks`: how every scenario ends
  (drain, counts, replay checks); `counterparty_check`: the counterparty features and aggregates
  against the replay, differences explained by logged late updates;
- `registry`: the scenarios in run order; `runner`: one stack, the scenarios in turn, the verdict;
- `report`: the table, the last-line JSON and docs/reliability.md.
"""

# In run order; `registry.SCENARIOS` implements them (kept here so `txguard --help` imports nothing heavy).
SCENARIO_NAMES = ("duplicates", "poison", "scoring_outage", "store_outage", "bad_model", "burst",
                  "worker_kill", "flaky_delivery", "promotion", "rule_promotion", "labels", "label_poisoning",
                  "counterparty_hot", "counterparty_outage")
