"""Create or upgrade the schema with Alembic, from code (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from store.db import get_engine, normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the shipped migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    cfg = alembic_config(url)
    engine = get_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Batch migrations rebuild SQLite tables (copy, drop, rename): foreign keys must not fire
            # meanwhile. The pragma only takes effect outside a transaction, hence before begin().
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # end SQLAlchemy's autobegun transaction (the pragma ran outside SQLite's)
        try:
            with connection.begin():
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "heads")
        finally:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def revision(url: str, message: str) -> None:
    """Autogenerate a new revision against `url` (developers: `python -m store.migrate "message"`)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/schema.db"
        upgrade(db)
        revision(db, sys.argv[1] if len(sys.argv) > 1 else "schema change")
