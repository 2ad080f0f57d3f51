"""Magic links for otp-pro: single-use, short-lived sign-in links sent by email.

The plugin (registered through the ``otp_pro`` entry point) lives in
:mod:`otp_pro_magic_links.plugin`; the page handlers in :mod:`otp_pro_magic_links.web`.
"""

from .binding import COOKIE_NAME, binding_cookie, ensure_binding, new_binding, read_binding
from .errors import BindingRequired
from .payload import MagicLinkPayload, send_link
from .web import Response, confirm_page, consume, error_page, make_wsgi_app, parse

__version__ = "0.1.0"

__all__ = [
    "COOKIE_NAME", "BindingRequired", "MagicLinkPayload", "Response", "__version__", "binding_cookie",
    "confirm_page", "consume", "ensure_binding", "error_page", "make_wsgi_app", "new_binding", "parse",
    "read_binding", "send_link",
]
