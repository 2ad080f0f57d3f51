"""Test, lint and demo sessions for the otp-pro monorepo.

``python -m nox`` runs every package's tests, each in its own environment;
``python -m nox -s demo`` runs the demo site; ``python -m nox -s build`` builds
every distribution's wheel and sdist into ``dist/``; ``python -m nox -s i18n``
extracts and checks the translations; ``python -m nox -l`` lists the sessions.
"""

from __future__ import annotations

import os
import shutil
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
PASSTHROUGH_ENV = ("OTP_PRO_TEST_POSTGRES_URL", "OTP_PRO_LOAD_REDIS_URL")

# Environments are rebuilt on every run (no reuse_existing_virtualenvs): a
# dependency dropped from a pyproject must then be missing from the next
# environment too, so a package that still imports it fails here as it would
# for a user. Pass -r / --reuse-existing-virtualenvs for a fast local rerun.
nox.options.sessions = ["tests", "authoring", "integration", "load", "build", "i18n"]
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
def integration(session: nox.Session) -> None:
    """Run tests/integration: the demo site (otp-pro-flask) with the core and every companion installed.

    The per-package sessions install one companion at a time; this one shows them
    together: SMS codes, magic links and HTML email on the demo site, in Flask's
    test client and in a real browser (Debian's Chromium, as in the core's tests).
    tests/integration/pytest.ini makes that folder the rootdir.
    """
    # One pip call, as install_packages does, so the companions' otp-pro-core requirement is met by the
    # local core (otp-pro-flask, which brings the demo site, is one of the companions).
    install_packages(session, *COMPANIONS)
    session.run("python", "--version")
    session.run(
        "pytest",
        "tests/integration",
        "--strict-markers",
        "--strict-config",
        "-ra",
        *session.posargs,
        env=passthrough_env(),
    )


@nox.session
def load(session: nox.Session) -> None:
    """Load test (bench/load.py): the demo under gunicorn (4 workers), a Celery worker, Redis and PostgreSQL.

    Without arguments it runs the CI size (120 sign-ins, 16 at a time) and fails when a
    delivery was lost or duplicated, a code was accepted twice or the audit counts differ;
    ``-- --members 1000 --concurrency 64 --write-docs`` is the full size that docs/benchmarks.md shows.
    """
    session.install(f"./packages/{CORE}[test,celery]", "./packages/otp-pro-flask", "gunicorn>=21", "requests>=2.31")
    args = session.posargs or ["--members", "120", "--concurrency", "16"]
    session.run("python", "bench/load.py", *args, env=passthrough_env())


@nox.session
def demo(session: nox.Session) -> None:
    """Install the core and every companion (otp-pro-flask brings the demo site), then run ``otp-pro demo``."""
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


# A third party's transport, as its author would ship it: the worked example and a
# skeleton freshly written by `otp-pro new-transport`.
EXAMPLES = ("examples/otp-pro-webhook",)


@nox.session
def authoring(session: nox.Session) -> None:
    """Build the core, the webhook example and a fresh ``otp-pro new-transport`` skeleton into wheels,
    install each plugin wheel into a clean environment beside the core wheel only, and run its tests.

    The core's dependencies are put in a wheelhouse once; the plugin environments then
    install with ``--no-index`` from it, so nothing but the core and the plugin is there.
    The skeleton is generated by the ``otp-pro`` of the installed core wheel, which also
    proves the templates ship in the wheel.
    """
    tmp = Path(session.create_tmp()).resolve()
    wheelhouse = tmp / "wheelhouse"
    skeleton = tmp / "otp-pro-nox-relay"
    for stale in (wheelhouse, skeleton):
        if stale.exists():
            shutil.rmtree(stale)
    session.run("python", "-m", "pip", "wheel", "-q", "-w", str(wheelhouse), f"./packages/{CORE}[testing]")
    session.install("--no-index", "--find-links", str(wheelhouse), "otp-pro-core")
    session.run("otp-pro", "new-transport", "nox-relay", "--directory", str(skeleton))
    plugins = [*(ROOT / example for example in EXAMPLES), skeleton]
    session.run("python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), *map(str, plugins))
    for plugin in plugins:
        env = tmp / f"env-{plugin.name}"
        if env.exists():
            shutil.rmtree(env)
        session.run("python", "-m", "venv", str(env))
        python = str(env / "bin" / "python")
        # Each folder is named after its distribution.
        session.run(python, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse),
                    "otp-pro-core[testing]", f"{plugin.name}[test]", external=True)
        # Only the core, the plugin and their dependencies: no sibling can lend a missing import.
        session.run(python, "-m", "pip", "list", "--format=freeze", external=True)
        with session.chdir(plugin):  # its pytest settings; its src/ is not on the path, the wheel is tested
            session.run(python, "-m", "pytest", "tests", "-p", "no:cacheprovider", "--strict-markers",
                        "--strict-config", "-q", *session.posargs, env=passthrough_env(), external=True)


# Packages with member-facing texts in gettext catalogs: each has a babel.cfg (what to extract from
# which files) and src/<import name>/locale/ (the .pot template, and .po + compiled .mo per language).
TRANSLATED = [name for name in PACKAGES if (ROOT / "packages" / name / "babel.cfg").is_file()]


def catalog_sources(package: str) -> tuple[Path, list[Path]]:
    """``package``'s import folder and the folders pybabel extract reads (it does not walk into "_" folders)."""
    src = ROOT / "packages" / package / "src"
    [folder] = [p for p in src.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    hidden = [p for p in folder.rglob("_*") if p.is_dir() and not p.name.startswith("__")]
    return folder, [folder, *hidden]


@nox.session
def i18n(session: nox.Session) -> None:
    """Extract each translated package's texts, compare them with its catalogs, and run the translation tests.

    For every package with a ``babel.cfg``, ``pybabel extract`` writes the messages of its code and
    templates into a temporary ``.pot``; a message the code has and the committed ``locale/<domain>.pot``
    lacks (or the other way round) fails the session. ``-- --update`` instead rewrites the ``.pot``,
    merges it into every language's ``.po`` (``pybabel update``: new messages arrive untranslated) and
    compiles the ``.mo`` files the wheel ships. Then the packages' ``test_translations.py`` run: a shipped
    language that misses a message or a placeholder, or a ``.mo`` older than its ``.po``, fails.
    """
    update = "--update" in session.posargs
    install_packages(session, *TRANSLATED)
    tmp = Path(session.create_tmp()).resolve()
    for package in TRANSLATED:
        folder, sources = catalog_sources(package)
        domain = folder.name
        locale = folder / "locale"
        template = locale / f"{domain}.pot"
        fresh = tmp / f"{domain}.pot"
        session.run("pybabel", "-q", "extract", "-F", f"packages/{package}/babel.cfg", "-k", "N_", "-k", "L_",
                    "--no-location", "--sort-output", "--omit-header", "-o", str(fresh), *map(str, sources))
        if not update:
            # Sorted, without locations or a header: the same code gives the same bytes.
            if not template.is_file() or fresh.read_bytes() != template.read_bytes():
                session.error(f"{template.relative_to(ROOT)} is not what the code holds: run nox -s i18n -- --update "
                              "and translate the new messages")
            continue
        shutil.copy(fresh, template)
        session.run("pybabel", "-q", "update", "-D", domain, "-i", str(template), "-d", str(locale),
                    "--no-fuzzy-matching", "--ignore-obsolete", "--width", "100")
        session.run("pybabel", "compile", "-D", domain, "-d", str(locale), "--statistics")
    for package in TRANSLATED:
        # One run per package, from its folder: its own pytest settings and conftest (the test files share a name).
        with session.chdir(ROOT / "packages" / package):
            session.run("pytest", "tests/test_translations.py", "--strict-markers", "--strict-config", "-q",
                        "-p", "no:cacheprovider", env=passthrough_env())


DIST = ROOT / "dist"


@nox.session
def build(session: nox.Session) -> None:
    """Build every distribution's wheel and sdist into ``dist/``, check them, and install each wheel apart.

    ``python -m build`` makes the sdist and then the wheel from that sdist, so a file
    the sdist leaves out breaks the wheel here rather than for a user; ``twine check
    --strict`` checks the metadata and the README as PyPI would render it. Each
    distribution's wheel is then installed into a fresh environment beside the core
    wheel only, and tests/packaging/check_install.py imports it, loads its entry points
    and asks the installed ``otp-pro`` to list it.

    Speed: the third-party dependencies are fetched once into a wheelhouse; each
    environment installs with ``--no-index`` from ``dist/`` (otp-pro) and that
    wheelhouse, and is made without pip (the session's pip installs into it).
    """
    session.install("build>=1.0", "twine>=5")
    if DIST.exists():
        shutil.rmtree(DIST)  # only this build's files: twine and the installs below take dist/* as they find it
    for name in PACKAGES:
        session.run("python", "-m", "build", "--outdir", str(DIST), f"packages/{name}", silent=True)
    built = sorted(path.name for path in DIST.iterdir())
    session.log("dist/: " + ", ".join(built))
    # One wheel and one sdist per distribution, so an install from dist/ can only pick this build.
    for name in PACKAGES:
        stem = name.replace("-", "_")
        for suffix in ("-py3-none-any.whl", ".tar.gz"):
            if not any(f.startswith(stem + "-") and f.endswith(suffix) for f in built):
                session.error(f"dist/ has no {suffix} of {name}: {built}")
    session.run("twine", "check", "--strict", *(str(DIST / f) for f in built))

    tmp = Path(session.create_tmp()).resolve()
    deps = tmp / "deps"
    if deps.exists():
        shutil.rmtree(deps)
    # The dependencies of every wheel, from PyPI once; the otp-pro wheels pip copies in are removed again, so the
    # otp-pro distributions below can only come from dist/.
    session.run("python", "-m", "pip", "download", "-q", "--dest", str(deps), "--find-links", str(DIST),
                *(str(DIST / f) for f in built if f.endswith(".whl")))
    for stale in deps.glob("otp_pro*"):
        stale.unlink()
    for name in PACKAGES:
        env = tmp / f"env-{name}"
        if env.exists():
            shutil.rmtree(env)
        session.run("python", "-m", "venv", "--without-pip", str(env))
        python = str(env / "bin" / "python")
        session.run("python", "-m", "pip", "--python", python, "install", "-q", "--no-index", "--find-links",
                    str(DIST), "--find-links", str(deps), *dict.fromkeys((CORE, name)))
        session.run("python", "-m", "pip", "--python", python, "check")
        session.run(python, str(ROOT / "tests" / "packaging" / "check_install.py"), name, external=True,
                    env={"PYTHONPATH": None})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark otp-pro against django-otp and the raw floor; rewrite docs/benchmarks.md (not a default session).

    Installs the core, every companion, Django and django-otp. Uses the local
    PostgreSQL (127.0.0.1:5432, trust auth) for a scratch database it drops
    afterwards. ``-- --quick`` for a smaller run, ``-- --no-write`` to only print,
    ``-- --pg ''`` to leave PostgreSQL out.
    """
    install_packages(session, *COMPANIONS, extras="")
    session.install("psycopg[binary]>=3.1", "Django>=4.2", "django-otp>=1.5")
    session.run("python", "bench/compare.py", *session.posargs)
