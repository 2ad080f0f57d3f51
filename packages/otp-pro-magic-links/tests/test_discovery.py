"""otp-pro-magic-links is found through the ``otp_pro`` entry-point group once installed."""

from __future__ import annotations

from otp_pro.testing import DiscoveryContract


class TestDiscovery(DiscoveryContract):
    entry_point = "otp_pro_magic_links"  # the entry-point name is the plugin's identity
    distribution = "otp-pro-magic-links"
    module = "otp_pro_magic_links.plugin"
