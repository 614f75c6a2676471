"""seed the audit chain head row

Concurrent first writers on a fresh database raced to create the single head row; with the
row present from the start, every writer only locks and updates it.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                    sa.column("hash", sa.String))
    exists = op.get_bind().execute(sa.select(sa.func.count()).select_from(head)).scalar()
    if not exists:
        op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    op.execute("DELETE FROM audit_head WHERE seq = 0")
