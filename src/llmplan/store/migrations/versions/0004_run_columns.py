"""A run's name and the summary of its recommendation in their own columns, so that the list of
runs reads neither the result nor the reports (each can be megabytes); filled in for the runs
already stored.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SUMMARY_KEYS = ("id", "deployment", "tco_usd", "cost_per_million_tokens_usd")


def summary(result):
    """What the list shows of a result: its recommendation's id, deployment and cost (None without one)."""
    rec = (result or {}).get("recommendation") if isinstance(result, dict) else None
    return {k: rec.get(k) for k in SUMMARY_KEYS} if isinstance(rec, dict) else None


def upgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("name", sa.String(200)))
        b.add_column(sa.Column("summary", sa.JSON))
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("scenario", sa.JSON),
                    sa.column("result", sa.JSON), sa.column("name", sa.String(200)), sa.column("summary", sa.JSON))
    conn = op.get_bind()
    last = 0
    while True:  # in batches: a store with many large results is never held in memory at once
        rows = conn.execute(sa.select(runs.c.id, runs.c.scenario, runs.c.result).where(runs.c.id > last)
                            .order_by(runs.c.id).limit(200)).all()
        if not rows:
            break
        for rid, scenario, result in rows:
            name = (scenario or {}).get("name") if isinstance(scenario, dict) else None
            conn.execute(sa.update(runs).where(runs.c.id == rid).values(
                name=str(name)[:200] if name is not None else None, summary=summary(result)))
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("runs") as b:
        b.drop_column("summary")
        b.drop_column("name")
