"""One Django project for the run, made as a new user makes it (:mod:`startproject`), migrated, served for real.

The project lives in a temporary folder; this pytest process runs Django on its settings
(for the test client and for making users with the ORM) and ``manage.py runserver`` serves
it on 127.0.0.1 for the browser. Both use the same database: a SQLite file, or with
``OTP_PRO_DJANGO_BACKEND=postgresql`` a PostgreSQL database made for the run beside
``OTP_PRO_TEST_POSTGRES_URL``'s and dropped afterwards (``test_postgresql.py`` runs this whole
suite that way in a second pytest process: Django is set up once per process). Codes are
mailed to the core's loopback SMTP server (``smtp_server`` / ``mailbox`` from ``otp_pro.testing``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from startproject import ADMIN_PASSWORD, PROJECT, Project, base_env, make_project, serve, stop

from otp_pro.testing import PG_ENV, Mailbox, system_chromium, temporary_pg_database

#: ``sqlite`` (default) or ``postgresql``: the database of this process's project.
BACKEND_ENV = "OTP_PRO_DJANGO_BACKEND"
SECRET_KEY = "django-suite-secret-" + "k" * 32


def _pg_env(url: str) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return {"TEST_PG_NAME": parsed.database or "", "TEST_PG_USER": parsed.username or "",
            "TEST_PG_PASSWORD": parsed.password or "", "TEST_PG_HOST": parsed.host or "127.0.0.1",
            "TEST_PG_PORT": str(parsed.port or 5432)}


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, smtp_server: tuple[str, int, Mailbox]) -> Iterator[Project]:
    """The project: made, migrated, a superuser ``admin`` created, and Django set up on it in this process."""
    backend = os.environ.get(BACKEND_ENV, "sqlite")
    assert backend in ("sqlite", "postgresql"), f"{BACKEND_ENV} must be sqlite or postgresql, not {backend!r}"
    extra = {"OTP_PRO_SECRET_KEY": SECRET_KEY, "TEST_SMTP_PORT": str(smtp_server[1]),
             "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
    with ExitStack() as stack:
        if backend == "postgresql":
            base = os.environ.get(PG_ENV)
            assert base, f"{BACKEND_ENV}=postgresql needs {PG_ENV}"
            extra.update(_pg_env(stack.enter_context(temporary_pg_database(base, "otp_pro_django"))))
        made = make_project(tmp_path_factory.mktemp("startproject"), base_env(extra), backend)
        made.manage("migrate", "--noinput")
        made.manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
        _setup_django(made, extra)
        try:
            yield made
        finally:
            _close_django()


def _close_django() -> None:
    # In a thread: a Playwright test may leave an event loop running in this one, where Django refuses.
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from otp_pro_django import close_otp

    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: (close_otp(), connections.close_all())).result()


def _setup_django(made: Project, extra: dict[str, str]) -> None:
    import django

    os.environ.update(extra)
    os.environ["DJANGO_SETTINGS_MODULE"] = f"{PROJECT}.settings"
    sys.path.insert(0, str(made.folder))
    django.setup()


@pytest.fixture(scope="session")
def live_server(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``manage.py runserver`` serving the project on 127.0.0.1; its base URL."""
    log = tmp_path_factory.mktemp("runserver") / "runserver.log"
    process = serve(project, log)
    try:
        yield project.base_url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser).

    One per module, not per run: Playwright's sync API runs an event loop in this thread while it is
    open, and the test client's modules need Django's database work here afterwards.
    """
    with system_chromium() as chromium:
        yield chromium


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made = browser.new_context()
    made.set_default_timeout(15_000)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Any:
    """``shot(page, name)``: a full-page screenshot under ``$OTP_PRO_ARTEFACTS`` (default ``<repo>/artefacts``)."""
    import re

    folder = Path(os.environ.get("OTP_PRO_ARTEFACTS") or Path(__file__).resolve().parents[3] / "artefacts" /
                  "screenshots") / "django"
    folder.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    counter = [0]

    def shot(page: Any, name: str) -> None:
        counter[0] += 1
        page.screenshot(path=str(folder / f"{test}-{counter[0]:02d}-{name}.png"), full_page=True)

    return shot
