"""failed/cancelled states with attempts and last error; registration numbers unique per
department's own registry (not across the corporation); token names unique per department

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTIVE = "state IN ('submitted', 'approved', 'signing', 'issued')"
REGISTRATION = "uq_certificates_active_registration"
TOKEN_NAME = "uq_api_tokens_department_name"


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.drop_index(REGISTRATION)
        batch_op.create_index(REGISTRATION, ["department_id", "cert_type", "registration_number"],
                              unique=True, sqlite_where=sa.text(ACTIVE),
                              postgresql_where=sa.text(ACTIVE))
    # Earlier versions allowed two tokens of one department to share a name (and so an audit
    # actor). Keep the oldest name as it is and give each later duplicate a distinct suffix.
    op.execute(
        "UPDATE api_tokens SET name = substr(name, 1, 20) || '-' || CAST(id AS TEXT) "
        "WHERE EXISTS (SELECT 1 FROM api_tokens older WHERE older.department_id = "
        "api_tokens.department_id AND older.name = api_tokens.name AND older.id < api_tokens.id)"
    )
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.create_unique_constraint(TOKEN_NAME, ["department_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_constraint(TOKEN_NAME, type_="unique")
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_index(REGISTRATION)
        batch_op.create_index(REGISTRATION, ["cert_type", "registration_number"], unique=True,
                              sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
        batch_op.drop_column("last_error")
        batch_op.drop_column("attempts")
