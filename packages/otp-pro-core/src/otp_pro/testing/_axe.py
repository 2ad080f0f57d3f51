"""The browser tests' accessibility check: axe-core (from the npm registry, pinned in ``axe/package-lock.json``)
run in the page, its serious and critical violations returned. Every adapter's browser tests use it.

axe-core is installed by ``npm ci`` from the lock file shipped beside this module, on first use, into a
cache folder (``$OTP_PRO_AXE_DIR``, else ``$XDG_CACHE_HOME/otp-pro/axe`` or ``~/.cache/otp-pro/axe``)
rather than into the package, which may be installed read-only. Without npm, or when the install fails,
the test fails under CI and is skipped elsewhere (:func:`~otp_pro.testing.unavailable`), as a missing
Chromium does. The pages' Content-Security-Policy allows no inline script, so the browser context that
runs axe must be made with ``bypass_csp=True``; the pages themselves are served unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from ._browser import unavailable

#: The package.json and package-lock.json that pin axe-core.
LOCK_DIR = Path(__file__).resolve().parent / "axe"
#: The impacts that fail the check.
BLOCKING = ("serious", "critical")


def _install_dir() -> Path:
    base = os.environ.get("OTP_PRO_AXE_DIR")
    if base:
        return Path(base)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    # Named by the lock file's hash: a new pin installs beside the old one instead of being mistaken for it.
    digest = hashlib.sha256((LOCK_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
    return cache_home / "otp-pro" / f"axe-{digest}"


@cache
def axe_source() -> str:
    """axe.min.js, installed from the lock file when it is not there yet."""
    target = _install_dir()
    script = target / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed (Debian's nodejs and npm packages): the accessibility check needs "
                        "axe-core from the npm registry")
        # Installed in a folder of its own, then renamed: two test processes starting at once never read a
        # half-installed copy.
        work = target.with_name(f"{target.name}.{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(LOCK_DIR / name, work / name)
        run = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=work, capture_output=True,
                             text=True, timeout=300, stdin=subprocess.DEVNULL)
        if run.returncode != 0 or not (work / "node_modules" / "axe-core" / "axe.min.js").is_file():
            shutil.rmtree(work, ignore_errors=True)
            unavailable(f"`npm ci` for axe-core failed ({run.returncode}): {run.stderr.strip()[:500]}")
        try:
            work.rename(target)
        except OSError:  # another process installed it first
            shutil.rmtree(work, ignore_errors=True)
    return script.read_text(encoding="utf-8")


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on Playwright's ``page`` as it stands: rule, impact, help and
    up to five elements each. The page's context must be made with ``bypass_csp=True``."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in BLOCKING]


class AxeReport:
    """The violations of several pages of one browser test, reported together at its end: a test walks through
    its pages calling :meth:`check` on each, then :meth:`assert_clean` (every page's problems in one failure,
    rather than the first page's alone)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: dict[str, list[dict[str, Any]]] = {}

    def check(self, name: str) -> None:
        """Run axe-core on the page as it stands now and keep its blocking violations under ``name``."""
        found = blocking_violations(self.page)
        if found:
            self.problems[name] = found

    def assert_clean(self) -> None:
        assert not self.problems, f"axe-core: serious or critical violations: {self.problems}"
