"""the 'signing' state counts as active for the one-certificate-per-registration rule

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD = "state IN ('submitted', 'approved', 'issued')"
NEW = "state IN ('submitted', 'approved', 'signing', 'issued')"
NAME = "uq_certificates_active_registration"


def _swap(drop: str, create: str) -> None:
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_index(NAME)
        batch_op.create_index(NAME, ["cert_type", "registration_number"], unique=True,
                              sqlite_where=sa.text(create), postgresql_where=sa.text(create))


def upgrade() -> None:
    _swap(OLD, NEW)


def downgrade() -> None:
    _swap(NEW, OLD)
