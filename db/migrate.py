"""Apply the Alembic migrations under db/migrations, and write new ones.

`make migration MESSAGE="add tags"` (which runs `python -m db.migrate "add tags"`) writes
`db/migrations/versions/<date>_<NNNN>_add_tags.py` by autogenerate: the difference between
the models in `db/models.py` and a database upgraded to the current head."""

import re
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from db.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The date the revision was written, its number, and its message: files sort by date.
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


def alembic_config(url: str, script_location: Path = MIGRATIONS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("file_template", FILE_TEMPLATE)
    # ConfigParser treats % as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def pending(url: str) -> tuple[str | None, str]:
    """(the database's revision, the code's head revision); equal when nothing is pending."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision(), head
    finally:
        engine.dispose()


def new_revision(message: str, script_location: Path = MIGRATIONS) -> Path:
    """Autogenerate the next revision against a scratch SQLite database at the head."""
    with tempfile.TemporaryDirectory() as scratch:
        config = alembic_config(f"sqlite:///{Path(scratch) / 'head.db'}", script_location)
        command.upgrade(config, "head")
        script = command.revision(config, message, autogenerate=True, rev_id=_next_number(config))
    assert script is not None
    assert not isinstance(script, list)
    return Path(script.path)


def _next_number(config: Config) -> str:
    numbers = [
        int(revision.revision)
        for revision in ScriptDirectory.from_config(config).walk_revisions()
        if re.fullmatch(r"\d+", revision.revision)
    ]
    return f"{max(numbers, default=0) + 1:04d}"


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        sys.exit('usage: python -m db.migrate "what the revision changes"')
    print(f"Wrote {new_revision(sys.argv[1])}; review it before committing.")
