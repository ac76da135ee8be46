"""Schema version 6: alert de-duplication marks.

* `alert_marks` — one row per alert that was raised, keyed by its de-duplication key
  (e.g. `budget_threshold:team-a:=:1793491200:80` — kind, budget, partition, window start,
  percent). Inserting the key is the claim: the replica (or thread) whose insert succeeds
  delivers the alert, every other one sees the conflict and stays silent, so an alert goes
  out once per threshold crossing per budget window however many replicas notice it.

Same conventions as every version: times are BIGINT µs (UTC).
"""

from __future__ import annotations

__all__ = ["V6"]

V6: tuple[str, ...] = (
    """CREATE TABLE alert_marks (
    dedup_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL
)""",
    "CREATE INDEX alert_marks_created ON alert_marks (created_at)",
)
