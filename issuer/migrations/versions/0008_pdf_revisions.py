"""PDF revisions: earlier signed files of a certificate, kept when an archival timestamp (PAdES
B-LTA, `pramaan ltv refresh`) replaced its current file

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pdf_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("certificate_id", sa.String(36), sa.ForeignKey("certificates.id"),
                  nullable=False, index=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("replaced_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pdf_revisions")
