"""otp-pro-sms-twilio is found through the ``otp_pro`` entry-point group once installed."""

from __future__ import annotations

from otp_pro.testing import DiscoveryContract


class TestDiscovery(DiscoveryContract):
    entry_point = "otp_pro_sms_twilio"  # the entry-point name is the plugin's identity
    distribution = "otp-pro-sms-twilio"
    module = "otp_pro_sms_twilio.plugin"
    lazy_imports = ("phonenumbers", "twilio")  # until a message needs them
