"""The pages inside the site's own base template.

The flow's Jinja2 templates render as they are, with one change: their ``otp_pro/base.html``
(a whole HTML document) is replaced by a shell that writes only the page's part (the grace
notice, the messages, the ``content`` block); the ``title`` and ``head`` blocks are rendered
on their own. The Django template ``otp_pro_django/page.html`` then puts them into the
template ``OTP_PRO_BASE_TEMPLATE`` names (``base.html`` by default), through its
``title`` and ``content`` blocks, or into the app's own ``otp_pro_django/base.html`` when
the site has no such template. The operator console's pages are put in the admin site's layout instead
(``otp_pro_django/admin_page.html``, extending ``admin/base_site.html``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.template import TemplateDoesNotExist
from django.template.loader import get_template, render_to_string
from django.utils.safestring import mark_safe
from jinja2 import ChoiceLoader, DictLoader, Environment, PackageLoader, select_autoescape

from otp_pro import i18n
from otp_pro.web.flow import Visit

from . import conf

#: The flow's base template, reduced to the page's own part (the site's template is the document).
SHELL = """\
{%- block head %}{% endblock -%}
{% if otp_pro_notice %}
<div class="notice" role="status">{{ otp_pro_notice }}
  <a href="{{ url_for('otp_pro.setup') }}">{{ _("Set up now") }}</a></div>
{% endif %}
{% with messages = get_flashed_messages(with_categories=true) %}
{% for category, message in messages %}
<p class="flash {{ category }}" role="{{ 'alert' if category == 'error' else 'status' }}">{{ message }}</p>
{% endfor %}
{% endwith %}
{% block content %}{% endblock %}
"""

FALLBACK_BASE = "otp_pro_django/base.html"
PAGE = "otp_pro_django/page.html"
#: The operator console's pages sit inside the admin site's layout (``admin/base_site.html``).
ADMIN_PAGE = "otp_pro_django/admin_page.html"
CONSOLE_TEMPLATES = "otp_pro/operator/"


@cache
def environment() -> Environment:
    """The core's templates with :data:`SHELL` as their base."""
    loader = ChoiceLoader([DictLoader({"otp_pro/base.html": SHELL}), PackageLoader("otp_pro.web", "templates")])
    return Environment(loader=loader, autoescape=select_autoescape(default=True))


class DjangoRenderer:
    """The flow's ``renderer``: ``(template, context, visit) -> HTML`` of a whole page in the site's layout."""

    def __call__(self, template: str, context: dict[str, Any], v: Visit) -> str:
        # The flow's own helpers (csrf_token, url_for, the messages) with the page's context over them.
        context = {**v.flow.template_context(v), **context}
        page = environment().get_template(template)
        body = page.render(context)
        # A console page names itself in console_title, which its layout's title block holds.
        title_block = page.blocks.get("title") or page.blocks.get("console_title")
        title = "".join(title_block(page.new_context(context))).strip() if title_block else ""
        request = getattr(v, "django_request", None)
        if template.startswith(CONSOLE_TEMPLATES) and request is not None:
            return render_to_string(ADMIN_PAGE, {
                **admin_context(request),
                "otp_pro_title": title,
                "otp_pro_body": mark_safe(body),
                "otp_pro_css": v.flow.url("static", root=v.request.root, filename="otp_pro.css"),
                "otp_pro_csrf": v.csrf_token(),
            }, request=request)
        return render_to_string(PAGE, {
            "otp_pro_base": base_template(),
            "otp_pro_title": title,
            "otp_pro_body": mark_safe(body),
            "otp_pro_css": v.flow.url("static", root=v.request.root, filename="otp_pro.css"),
            "otp_pro_csrf": v.csrf_token(),
            "otp_pro_member": context.get("otp_pro_member"),
            "otp_pro_settings_url": v.url("settings"),
            "otp_pro_logout_url": v.request.root + v.flow.logout_url,
            "site_name": context.get("site_name"),
            # The page's language, for the app's fallback base template's <html lang> (a site's own base
            # template has its own, from Django's LANGUAGE_CODE).
            "otp_pro_lang": context.get("otp_pro_lang"),
            # The fallback base template's own words, in the page's language (Flow.render set it).
            "otp_pro_texts": {"account": i18n.gettext("Account"), "settings": i18n.gettext("Security settings"),
                              "sign_out": i18n.gettext("Sign out")},
        }, request=request)


def admin_context(request: Any) -> dict[str, Any]:
    """What every admin page reads (site header, the user's tools), from the default admin site."""
    from django.contrib import admin

    return dict(admin.site.each_context(request))


def base_template() -> Any:
    """The site's base template, or the app's own when the site has none of that name."""
    try:
        return get_template(conf.base_template())
    except TemplateDoesNotExist:
        return get_template(FALLBACK_BASE)
