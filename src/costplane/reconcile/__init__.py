"""Reconciliation against the bill: what the providers billed (OpenAI Costs/Usage API, Anthropic cost
and usage reports, any FOCUS export) against what costplane metered, per day × provider × model ×
project, with the drift, the unmatched lines on both sides and a drift alert. See docs/reconcile.md.

Modules: `sources` (one reader per bill format), `clock` (days in a zone), `normalize` (model and
provider names), `metered` (the ledger side), `match` (the rules), `run` (one reconciliation),
`report` (table, JSON, CSV), `alert` (the webhook), `fetch` (download with an admin key), `settings`
(`reconcile:` in costplane.yaml). Nothing is imported here, so that the configuration loader can read
`settings` without pulling in the ledger.
"""

__all__: list[str] = []
