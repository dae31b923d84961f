"""What the bench scripts that run the app stack share (bench/load.py, bench/web_rss.py).

Each runs on a throw-away database beside DATABASE_URL's (dropped and re-created each run; no
other database is touched), its own Redis db and a temporary media folder, with gunicorn and the
workers started by ``tests.reliability.servers``. A script imports this module right after its
``sys.path`` fix: run as ``python bench/x.py``, bench/ would be ``sys.path[0]`` and
bench/queue.py would shadow the stdlib ``queue`` module.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.reliability.servers import app_env

REPO = Path(__file__).resolve().parent.parent
#: the server the bench databases are created on (read before a script points DATABASE_URL at
#: its own database)
BASE_DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/studio")


def database_url_for(name: str) -> str:
    """The URL of the database ``name`` on DATABASE_URL's server."""
    return urlunsplit(urlsplit(BASE_DATABASE_URL)._replace(path=f"/{name}"))


@dataclass(frozen=True)
class Stack:
    """A bench's app stack: its database (a name on DATABASE_URL's server), Redis and media."""

    database: str
    database_url: str
    redis_url: str
    media: Path
    #: the environment of the stack's server processes (``app_env``: DEBUG off, a real SECRET_KEY)
    env: dict[str, str]

    def recreate_database(self) -> None:
        with psycopg.connect(database_url_for("postgres"), autocommit=True, connect_timeout=5) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{self.database}"')

    def drop_database(self) -> None:
        with psycopg.connect(database_url_for("postgres"), autocommit=True, connect_timeout=5) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def use_stack(database: str, *, redis_url: str, media_prefix: str, **extra: str) -> Stack:
    """The stack on database ``database``, ``redis_url`` and a new media folder; this process's
    Django (set-up and seeding only) is pointed at it.

    This process also gets the servers' SECRET_KEY, DEBUG and ALLOWED_HOSTS. ``extra`` goes to
    the servers' environment only.
    """
    url = database_url_for(database)
    media = Path(tempfile.mkdtemp(prefix=media_prefix))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "MEDIA_ROOT": str(media),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    env = app_env(database_url=url, redis_url=redis_url, media_root=media, **extra)
    os.environ.update({k: env[k] for k in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")})
    return Stack(database=database, database_url=url, redis_url=redis_url, media=media, env=env)
