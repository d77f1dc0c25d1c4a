"""What the enrichment function runs: the Pub/Sub envelope (`envelope`), the pipeline that turns
one delivery into a decision or a parked message (`pipeline`), the history stores (`history`),
the scoring client (`scoring_client`) and the outbox that publishes decisions (`outbox`)."""
