"""Django's database settings as the SQLAlchemy URL otp-pro connects with.

otp-pro keeps its tables in the site's own database by default (the one
``OTP_PRO_DATABASE_ALIAS`` names, ``default``), reached through SQLAlchemy on its
own connections: Django's connections are per thread and per request, otp-pro's
are pooled by SQLAlchemy, and both see the same tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

SQLITE_ENGINES = ("django.db.backends.sqlite3", "django.contrib.gis.db.backends.spatialite")
POSTGRESQL_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")

# Django's own OPTIONS, not libpq parameters: they are never passed to the driver in the URL.
_DJANGO_ONLY_OPTIONS = frozenset({"isolation_level", "server_side_binding", "pool", "assume_role", "cursor_factory",
                                  "context", "init_command"})


def url_for_database(alias: str, database: Mapping[str, Any]) -> str:
    """The SQLAlchemy URL of one entry of ``settings.DATABASES`` (SQLite or PostgreSQL).

    Raises :class:`~django.core.exceptions.ImproperlyConfigured`, naming the alias, for another engine or an
    in-memory SQLite database (a second connection cannot see it): set ``OTP_PRO["database_url"]`` then.
    """
    engine = str(database.get("ENGINE", ""))
    name = database.get("NAME")
    if engine in SQLITE_ENGINES:
        text = str(name or "")
        if not text or text == ":memory:" or text.startswith("file:") or "mode=memory" in text:
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}] is an in-memory SQLite database, which otp-pro's own connections cannot "
                "see: use a file, or set OTP_PRO['database_url']")
        return "sqlite:///" + str(Path(text).expanduser().resolve())
    if engine in POSTGRESQL_ENGINES:
        return _postgresql_url(database)
    raise ImproperlyConfigured(
        f"otp-pro runs on SQLite or PostgreSQL; DATABASES[{alias!r}] uses {engine or 'no ENGINE'}: "
        "set OTP_PRO['database_url'] to a SQLite or PostgreSQL database")


def _postgresql_url(database: Mapping[str, Any]) -> str:
    from sqlalchemy.engine import URL

    options = database.get("OPTIONS") or {}
    query = {str(k): str(v) for k, v in options.items()
             if k not in _DJANGO_ONLY_OPTIONS and isinstance(v, (str, int)) and not isinstance(v, bool)}
    port = database.get("PORT")
    url = URL.create(
        _postgresql_driver(),
        username=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or None,
        port=int(port) if port not in (None, "") else None,
        database=str(database.get("NAME") or "") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def _postgresql_driver() -> str:
    # Django runs on psycopg 3 or psycopg2; SQLAlchemy takes the same driver, so no second one is needed.
    try:
        import psycopg  # noqa: F401
    except ImportError:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise ImproperlyConfigured(
                "otp-pro on PostgreSQL needs psycopg: pip install 'otp-pro-django[postgresql]'") from None
        return "postgresql+psycopg2"
    return "postgresql+psycopg"
