"""A Django project as a new user makes it: ``django-admin startproject``, the lines otp-pro asks for, ``migrate``.

The lines added are data here (:data:`SETTINGS_LINES`, :data:`URLS_LINES`), so the test
that counts them counts what the project really runs. :data:`SITE_LINES` are the
site's own code that a test needs (a view that moves money, decorated for step-up),
counted too. On PostgreSQL the project's ``DATABASES`` names the database made for
the run: the site's choice of database, not an otp-pro line (:data:`POSTGRES_LINES`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from otp_pro.testing import free_port

PROJECT = "site_under_test"
ADMIN_PASSWORD = "Adm1n-pass-" + "x" * 8

#: Everything otp-pro needs in settings.py. The secret key comes from OTP_PRO_SECRET_KEY (the core reads it).
SETTINGS_LINES = (
    'INSTALLED_APPS += ["otp_pro_django"]',
    'MIDDLEWARE += ["otp_pro_django.middleware.OtpProMiddleware"]',
    'OTP_PRO = {"site_name": "Startproject", "roles": {"staff": {"requirement": "required"}},',
    '           "resend_cooldown_seconds": 0, "providers": {"email": {',
    '               "smtp_host": "127.0.0.1", "smtp_port": {"env": "TEST_SMTP_PORT"},',
    '               "from_address": "otp@example.com"}}}',
    # The operator console, for staff who may view the admin's own log.
    'OTP_PRO_OPERATOR_PERMISSION = "admin.view_logentry"',
)
#: Everything otp-pro needs in urls.py.
URLS_LINES = (
    "from django.urls import include",
    'urlpatterns += [path("mfa/", include("otp_pro_django.urls"))]',
)
#: The site's own sensitive view, with step-up: the last second step must be at most 2 seconds old.
SITE_LINES = (
    "from django.http import HttpResponse",
    "from otp_pro_django import recently_verified",
    'payout = recently_verified(max_age=2)(lambda request: HttpResponse("payout sent"))',
    'urlpatterns += [path("payout/", payout)]',
)
#: PostgreSQL only: the site's database (from the environment, as a deployed site reads it).
POSTGRES_LINES = (
    "import os",
    'DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ["TEST_PG_NAME"],',
    '    "USER": os.environ["TEST_PG_USER"], "PASSWORD": os.environ["TEST_PG_PASSWORD"],',
    '    "HOST": os.environ["TEST_PG_HOST"], "PORT": os.environ["TEST_PG_PORT"]}}',
)


@dataclass
class Project:
    """A made project: its folder, the environment its processes run with, and its live server once started."""

    folder: Path
    env: dict[str, str]
    backend: str
    base_url: str = ""

    def manage(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python manage.py ARGS`` in the project, as its operator runs it."""
        run = subprocess.run([sys.executable, "manage.py", *args], cwd=self.folder, env=self.env,
                             capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and run.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
        return run


def make_project(parent: Path, env: dict[str, str], backend: str) -> Project:
    """``django-admin startproject`` in ``parent``, with the lines above appended; not migrated yet."""
    folder = parent / "project"
    folder.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", PROJECT, str(folder)], check=True, env=env,
                   capture_output=True, text=True, timeout=120)
    settings = folder / PROJECT / "settings.py"
    extra = POSTGRES_LINES if backend == "postgresql" else ()
    settings.write_text(settings.read_text() + "\n" + "\n".join((*SETTINGS_LINES, *extra)) + "\n")
    urls = folder / PROJECT / "urls.py"
    urls.write_text(urls.read_text() + "\n" + "\n".join((*URLS_LINES, *SITE_LINES)) + "\n")
    return Project(folder, env, backend)


def serve(project: Project, log: Path, port: int | None = None) -> subprocess.Popen[bytes]:
    """``manage.py runserver`` on ``port`` (a free one by default) of 127.0.0.1, without the reloader;
    returns once it answers."""
    port = port or free_port()
    out = log.open("wb")
    process = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                               cwd=project.folder, env=project.env, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    out.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"runserver exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.terminate()
        raise AssertionError(f"runserver did not answer on port {port}:\n{log.read_text()}")
    project.base_url = f"http://127.0.0.1:{port}"
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server this module started (by its own process id)."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment, without a settings module the outer shell may have set, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(extra)
    return env
