"""Reading otp-pro's web pages in tests."""

from __future__ import annotations

import re


def page_csrf(page: str) -> str:
    """The CSRF token in a page's ``<meta name="csrf-token">`` (otp-pro's base template puts it there).

    Send it back as the ``csrf_token`` form field or the ``X-CSRF-Token`` header.
    """
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)
