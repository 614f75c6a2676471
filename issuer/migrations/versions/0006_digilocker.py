"""DigiLocker: replayed txn guard, linked accounts (tokens encrypted), OAuth link requests in
flight, deliveries (push URI A/U/D with retry state), the account a certificate is pushed to

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "digilocker_replays",
        sa.Column("txn", sa.String(100), primary_key=True),
        sa.Column("seen_at", TZ, nullable=False, index=True),
    )
    op.create_table(
        "digilocker_accounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("digilockerid", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("linked_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_table(
        "digilocker_link_requests",
        sa.Column("state", sa.String(100), primary_key=True),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("certificate_id", sa.String(36), sa.ForeignKey("certificates.id"),
                  nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("certificate_id", sa.String(36), sa.ForeignKey("certificates.id"),
                  nullable=False, index=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("digilocker_accounts.id"),
                  nullable=False),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_try_at", TZ, nullable=True, index=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.UniqueConstraint("certificate_id", "action", name="uq_deliveries_action"),
    )
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("digilocker_account_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_certificates_digilocker_account", "digilocker_accounts",
                                    ["digilocker_account_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_constraint("fk_certificates_digilocker_account", type_="foreignkey")
        batch_op.drop_column("digilocker_account_id")
    op.drop_table("deliveries")
    op.drop_table("digilocker_link_requests")
    op.drop_table("digilocker_accounts")
    op.drop_table("digilocker_replays")
