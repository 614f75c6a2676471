"""Alembic environment: the connection is handed in by issuer.migrate (no alembic.ini URL)."""

from alembic import context

from issuer.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `pramaan migrate` / issuer.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
