"""``{% load otp_pro %}``: the tags a site's own templates use.

``{% otp_pro_first_factor %}`` puts the "Sign in with a passkey" buttons (and their script) on the site's
login page, under its password form: nothing when no factor signs members in on its own. They post to the
flow, which signs the member in (Django's ``auth.login`` included) and sends them on to ``next``; a
refusal comes back to ``LOGIN_URL`` with the reason shown above the buttons.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.utils.safestring import SafeString, mark_safe

from otp_pro.web.flow import first_factor_html
from otp_pro.web.flow.state import safe_next

from .. import adapter

register = template.Library()


@register.simple_tag(takes_context=True)
def otp_pro_first_factor(context: Any, next: str | None = None) -> SafeString:
    """The buttons; ``next`` defaults to the login view's own (``LoginView`` puts it in the context)."""
    request = context.get("request")
    if request is None or not hasattr(request, "session"):
        raise ImproperlyConfigured("{% otp_pro_first_factor %} needs the request in the template context: "
                                   "add django.template.context_processors.request to TEMPLATES")
    v = adapter.visit(request)
    wanted = next if next is not None else context.get("next") or request.GET.get("next")
    # The flow's template escapes what it writes; the HTML it answers is safe as a whole.
    return mark_safe(first_factor_html(v, next=safe_next(wanted, v.flow.home_url)))
