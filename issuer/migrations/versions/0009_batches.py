"""Batches: uploaded files of certificate requests, approved as a whole, and their valid rows

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("department_id", sa.String(64), sa.ForeignKey("departments.id"),
                  nullable=False),
        sa.Column("cert_type", sa.String(32), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("file_format", sa.String(8), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("valid_rows", sa.Integer(), nullable=False),
        sa.Column("row_errors", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", sa.String(100), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("department_id", "content_sha256", name="uq_batches_content"),
        sa.UniqueConstraint("department_id", "idempotency_key", name="uq_batches_idempotency"),
    )
    op.create_table(
        "batch_rows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("batches.id"), nullable=False,
                  index=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("registration_number", sa.String(64), nullable=False),
        sa.Column("ward_code", sa.String(16), nullable=False),
        sa.Column("aadhaar_last4", sa.String(4), nullable=True),
        sa.Column("aadhaar_hmac", sa.String(64), nullable=True),
        sa.Column("certificate_id", sa.String(36), sa.ForeignKey("certificates.id"),
                  nullable=True, unique=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("batch_id", "line", name="uq_batch_rows_line"),
    )


def downgrade() -> None:
    op.drop_table("batch_rows")
    op.drop_table("batches")
