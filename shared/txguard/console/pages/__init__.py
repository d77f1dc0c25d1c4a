"""The console's pages, one Flask blueprint each: `queue` (review queue and verdicts), `live`
(decisions as they arrive), `score` (manual scoring) and `models` (registry, aliases, drift).

Each page module holds its HTML page and its JSON API (`/api/<page>/...`) and reads the console's
parts through `txguard.console.wiring.current_parts`; txguard.console.app registers the blueprints
and owns what every page shares: who the analyst is, the error shapes, `/healthz`. A new page is a
module here and one line in `app.BLUEPRINTS`. `labels` has no page: the item page asks it what the
label function did with a verdict.
"""
