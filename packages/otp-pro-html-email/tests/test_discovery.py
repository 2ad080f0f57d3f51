"""otp-pro-html-email is found through the ``otp_pro`` entry-point group once installed."""

from __future__ import annotations

from otp_pro.testing import DiscoveryContract


class TestDiscovery(DiscoveryContract):
    entry_point = "otp_pro_html_email"  # the entry-point name is the plugin's identity
    distribution = "otp-pro-html-email"
    module = "otp_pro_html_email.plugin"
    lazy_imports = ("jinja2", "premailer")  # until a message needs them
