"""The system's Chromium for browser tests, and the rule for a missing requirement: fail in CI, skip elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

#: Flags for a headless Chromium in a container or CI runner (no sandbox, nothing fetched in the background).
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)


def in_ci() -> bool:
    """Whether ``CI`` is set to a true value (``.ci/run`` sets ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """A test's requirement is missing: a failure under CI, a skip that says why elsewhere."""
    if in_ci():
        pytest.fail(f"browser test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser test skipped (set CI=true to make this a failure): {reason}")


@contextmanager
def system_chromium(extra: str = "test") -> Iterator[Any]:
    """The system's Chromium (Debian's ``chromium``, ``/usr/bin/chromium``), headless, driven by Playwright.

    No browser is ever downloaded (never ``playwright install``). Without Chromium or the
    ``playwright`` package the test fails under CI and is skipped elsewhere (:func:`unavailable`);
    ``extra`` names the extra that installs playwright, for that message.
    """
    import shutil

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.isfile(executable):
        unavailable("Chromium is not installed: `apt-get install chromium` (Debian's package, /usr/bin/chromium); "
                    "never `playwright install`")
    try:
        # Imported here: playwright is in the test extra, not in the testing extra that loads this plugin.
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(f"the playwright package is missing: install the `{extra}` extra")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
