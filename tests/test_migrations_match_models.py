"""The schema the migrations build is the schema the models describe, on both databases: a
column or index added to one and not the other fails here, not in production."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from issuer.migrate import upgrade
from issuer.models import Base


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
