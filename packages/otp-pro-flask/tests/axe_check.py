"""The accessibility check of the browser tests: axe-core (from the npm registry, pinned in axe/package-lock.json)
run in the page, its serious and critical violations returned.

axe-core is installed by ``npm ci`` into ``tests/axe/node_modules`` on first use. Without npm, or when the
install fails, the test fails under CI and is skipped elsewhere (``otp_pro.testing.unavailable``), as a
missing Chromium does. The page's Content-Security-Policy allows no inline script, so the context that
runs axe is made with ``bypass_csp=True``; the pages themselves are served unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from otp_pro.testing import unavailable

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail the check.
BLOCKING = ("serious", "critical")


@cache
def axe_source() -> str:
    """axe.min.js, installed from the lock file when it is not there yet."""
    if not AXE_JS.is_file():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed (Debian's nodejs and npm packages): the accessibility check needs "
                        "axe-core from the npm registry")
        run = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=AXE_DIR, capture_output=True,
                             text=True, timeout=300, stdin=subprocess.DEVNULL)
        if run.returncode != 0 or not AXE_JS.is_file():
            unavailable(f"`npm ci` for axe-core failed ({run.returncode}): {run.stderr.strip()[:500]}")
    return AXE_JS.read_text(encoding="utf-8")


def blocking_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` as it stands: rule, impact, help, the elements."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in BLOCKING]
