"""The whole suite again on PostgreSQL: the project's ``default`` database is a PostgreSQL database made for the run.

Django is set up once per process, so the run is a second pytest process with
``OTP_PRO_DJANGO_BACKEND=postgresql`` (see conftest.py); it creates its database beside
``OTP_PRO_TEST_POSTGRES_URL``'s (the shared ``test`` database is never touched) and drops it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BACKEND_ENV

from otp_pro.testing import PG_ENV, PG_SKIP_REASON

HERE = Path(__file__).resolve().parent


def test_the_suite_passes_on_postgresql():
    if not os.environ.get(PG_ENV):
        pytest.skip(PG_SKIP_REASON)
    if os.environ.get(BACKEND_ENV) == "postgresql":
        pytest.skip("this is the PostgreSQL run already")
    env = {**os.environ, BACKEND_ENV: "postgresql"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE), "-p", "no:cacheprovider", "-q", "--strict-markers",
         "--deselect", f"{HERE / Path(__file__).name}::test_the_suite_passes_on_postgresql"],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    summary = re.search(r"(\d+) passed", run.stdout)
    assert summary and int(summary.group(1)) >= 20, tail
    print(run.stdout.strip().splitlines()[-1])
