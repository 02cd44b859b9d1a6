"""Jobs with an owner and a heartbeat (a job is failed only when the process running it stops
beating, not because another process started), their queue position; rendered PDFs cached per
run; catalog overrides that can be disabled.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        b.add_column(sa.Column("owner", sa.String(80)))
        b.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        b.add_column(sa.Column("queue_position", sa.Integer))
    with op.batch_alter_table("runs") as b:
        b.add_column(sa.Column("report_pdf", sa.LargeBinary))
    with op.batch_alter_table("catalog_overrides") as b:
        b.add_column(sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("catalog_overrides") as b:
        b.drop_column("enabled")
    with op.batch_alter_table("runs") as b:
        b.drop_column("report_pdf")
    with op.batch_alter_table("jobs") as b:
        b.drop_column("queue_position")
        b.drop_column("heartbeat_at")
        b.drop_column("owner")
