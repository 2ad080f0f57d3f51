"""Test, lint and demo sessions for the otp-pro monorepo.

``python -m nox`` runs every package's tests, each in its own environment;
``python -m nox -s demo`` runs the scripted walk-through; ``python -m nox -l``
lists the sessions.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CORE = "otp-pro-core"

# Every folder under packages/ with a pyproject.toml is a distribution: a new
# companion gets its own test session without touching this file.
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
COMPANIONS = [name for name in PACKAGES if name != CORE]

# Variables the tests read from the environment. nox passes the outer
# environment through already; naming them here keeps that true even if a
# session is later run with include_outer_env=False or a stripped environment.
PASSTHROUGH_ENV = ("OTP_PRO_TEST_POSTGRES_URL",)

# Environments are rebuilt on every run (no reuse_existing_virtualenvs): a
# dependency dropped from a pyproject must then be missing from the next
# environment too, so a package that still imports it fails here as it would
# for a user. Pass -r / --reuse-existing-virtualenvs for a fast local rerun.
nox.options.sessions = ["tests"]
nox.options.error_on_external_run = True


def install_packages(session: nox.Session, *packages: str, extras: str = "test") -> None:
    """Install the core and ``packages`` from this checkout, each with ``extras``.

    One pip call, so the companions' ``otp-pro-core`` requirement is satisfied
    by the local core and never looked up on a package index.
    """
    names = [CORE, *(name for name in packages if name != CORE)]
    suffix = f"[{extras}]" if extras else ""
    session.install(*(f"./packages/{name}{suffix}" for name in names))


def passthrough_env() -> dict[str, str]:
    """The variables of PASSTHROUGH_ENV that are set in the outer environment."""
    return {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}


def tests_impl(
    session: nox.Session,
    package: str,
    extras: str = "test",
    pytest_extra_args: tuple[str, ...] = (),
) -> None:
    """Install the core and ``package`` alone into the session and run its tests.

    Nothing else from the repository is installed, so a dependency the package
    forgot to declare fails here instead of being lent by a sibling.
    """
    install_packages(session, package, extras=extras)
    session.run("python", "--version")
    session.run(
        "pytest",
        f"packages/{package}/tests",
        "--strict-markers",
        "--strict-config",
        "-ra",
        *pytest_extra_args,
        *session.posargs,
        env=passthrough_env(),
    )


@nox.session
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests in an environment holding only the core and that package."""
    tests_impl(session, package)


@nox.session
def demo(session: nox.Session) -> None:
    """Install the core and every companion, then run ``otp-pro demo`` on an embedded SQLite file."""
    install_packages(session, *COMPANIONS, extras="")
    session.run("otp-pro", "demo", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff over every package and mypy over the core (not part of the default sessions).

    Each package's ``[tool.ruff]`` / ``[tool.mypy]`` in its own pyproject applies.
    The core is installed (with its test extra, for ``otp_pro.testing``) so mypy
    checks it against the installed dependencies' types.
    """
    install_packages(session)
    session.install("ruff", "mypy")
    session.run("ruff", "check", "packages", *session.posargs)
    # From the core's folder, so mypy reads its pyproject (``files = ["src"]``).
    session.chdir(f"packages/{CORE}")
    session.run("mypy")
