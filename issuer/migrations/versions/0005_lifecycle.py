"""certificate lifecycle: users, approval rule per department, ward offices with RTS officers,
corrections, rejection and revocation, Aadhaar kept only as last four digits and an HMAC, RTS
escalations, released certificate numbers, token expiry

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_ACTIVE = "state IN ('submitted', 'approved', 'signing', 'issued')"
ACTIVE = ("state = 'issued' OR (state IN ('submitted', 'approved', 'signing') "
          "AND corrects IS NULL)")
LIVE_CORRECTION = "corrects IS NOT NULL AND state IN ('submitted', 'approved', 'signing', 'issued')"
REGISTRATION = "uq_certificates_active_registration"
CORRECTION = "uq_certificates_live_correction"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("departments") as batch_op:
        batch_op.add_column(sa.Column("approval", sa.String(16), nullable=False,
                                      server_default="officer"))
    # Until now every request was approved automatically: the development department keeps
    # that rule (`pramaan init` makes it so); every other department now needs an officer.
    op.execute("UPDATE departments SET approval = 'automatic' WHERE id = 'pmc-births-deaths'")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("expires_at", TZ, nullable=True))
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("department_id", sa.String(64), sa.ForeignKey("departments.id"),
                  nullable=False),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("disabled_at", TZ, nullable=True),
    )
    op.create_table(
        "ward_offices",
        sa.Column("department_id", sa.String(64), sa.ForeignKey("departments.id"),
                  primary_key=True),
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("name_mr", sa.String(200), nullable=False),
        sa.Column("designated_officer", sa.String(100), nullable=True),
        sa.Column("first_appellate", sa.String(100), nullable=True),
        sa.Column("second_appellate", sa.String(100), nullable=True),
        sa.UniqueConstraint("department_id", "name_en", name="uq_ward_offices_department_name"),
    )
    op.create_table(
        "released_numbers",
        sa.Column("series", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(40), primary_key=True),
        sa.Column("serial", sa.Integer(), nullable=False),
    )
    op.create_table(
        "rts_escalations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("certificate_id", sa.String(36), sa.ForeignKey("certificates.id"),
                  nullable=False, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(100), nullable=True),
        sa.Column("days_late", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.UniqueConstraint("certificate_id", "level", name="uq_rts_escalations_level"),
    )
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.add_column(sa.Column("corrects", sa.String(36), nullable=True))
        batch_op.add_column(sa.Column("ward_code", sa.String(16), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("decided_by", sa.String(100), nullable=True))
        batch_op.add_column(sa.Column("decision_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", TZ, nullable=True))
        batch_op.add_column(sa.Column("aadhaar_last4", sa.String(4), nullable=True))
        batch_op.add_column(sa.Column("aadhaar_hmac", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.create_foreign_key("fk_certificates_corrects", "certificates",
                                    ["corrects"], ["id"])
        batch_op.create_index("ix_certificates_aadhaar_hmac", ["aadhaar_hmac"])
        batch_op.drop_index(REGISTRATION)
        batch_op.create_index(REGISTRATION, ["department_id", "cert_type", "registration_number"],
                              unique=True, sqlite_where=sa.text(ACTIVE),
                              postgresql_where=sa.text(ACTIVE))
        batch_op.create_index(CORRECTION, ["corrects"], unique=True,
                              sqlite_where=sa.text(LIVE_CORRECTION),
                              postgresql_where=sa.text(LIVE_CORRECTION))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch_op:
        batch_op.drop_index(CORRECTION)
        batch_op.drop_index(REGISTRATION)
        batch_op.create_index(REGISTRATION, ["department_id", "cert_type", "registration_number"],
                              unique=True, sqlite_where=sa.text(OLD_ACTIVE),
                              postgresql_where=sa.text(OLD_ACTIVE))
        batch_op.drop_index("ix_certificates_aadhaar_hmac")
        batch_op.drop_constraint("fk_certificates_corrects", type_="foreignkey")
        for column in ("escalation_level", "aadhaar_hmac", "aadhaar_last4", "revoked_at",
                       "decision_reason", "decided_by", "ward_code", "corrects"):
            batch_op.drop_column(column)
    op.drop_table("rts_escalations")
    op.drop_table("released_numbers")
    op.drop_table("ward_offices")
    op.drop_table("users")
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("departments") as batch_op:
        batch_op.drop_column("approval")
