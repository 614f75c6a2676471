"""Published documents: the signed seal trust list and status list, as last signed

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "published_documents",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("refresh_after", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("published_documents")
