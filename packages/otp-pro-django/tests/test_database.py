"""Django's DATABASES entries as the SQLAlchemy URL otp-pro connects with, and the refusals, each naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from sqlalchemy.engine import make_url

from otp_pro_django.database import url_for_database


def test_a_sqlite_file_is_the_same_file_by_its_absolute_path(tmp_path):
    url = url_for_database("default", {"ENGINE": "django.db.backends.sqlite3", "NAME": tmp_path / "db.sqlite3"})
    assert url == f"sqlite:///{tmp_path}/db.sqlite3"
    relative = url_for_database("default", {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"})
    assert make_url(relative).database == str(Path("db.sqlite3").resolve())


def test_postgresql_settings_become_a_psycopg_url_with_the_libpq_options():
    url = url_for_database("default", {
        "ENGINE": "django.db.backends.postgresql", "NAME": "shop", "USER": "web", "PASSWORD": "p@ss/word",
        "HOST": "db.internal", "PORT": "6432",
        "OPTIONS": {"sslmode": "require", "isolation_level": 1, "pool": True, "application_name": "shop"},
    })
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == \
        ("web", "p@ss/word", "db.internal", 6432, "shop")
    # Django's own options are not libpq parameters and stay out.
    assert dict(parsed.query) == {"sslmode": "require", "application_name": "shop"}


def test_a_postgresql_server_on_the_local_socket_has_no_host():
    parsed = make_url(url_for_database("default", {"ENGINE": "django.db.backends.postgresql", "NAME": "shop"}))
    assert parsed.host is None and parsed.port is None and parsed.database == "shop"


@pytest.mark.parametrize("name", [":memory:", "", "file:memorydb_default?mode=memory&cache=shared"])
def test_an_in_memory_sqlite_database_is_refused_with_the_fix(name):
    with pytest.raises(ImproperlyConfigured, match=r"in-memory SQLite .*OTP_PRO\['database_url'\]"):
        url_for_database("default", {"ENGINE": "django.db.backends.sqlite3", "NAME": name})


def test_another_engine_is_refused_naming_the_alias_and_the_fix():
    refusal = r"DATABASES\['legacy'\] uses django.db.backends.mysql.*database_url"
    with pytest.raises(ImproperlyConfigured, match=refusal):
        url_for_database("legacy", {"ENGINE": "django.db.backends.mysql", "NAME": "shop"})
