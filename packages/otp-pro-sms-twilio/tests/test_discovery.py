"""otp-pro-sms-twilio is found through the ``otp_pro`` entry-point group once installed."""

from __future__ import annotations

import subprocess
import sys

from otp_pro.testing import DiscoveryContract


class TestDiscovery(DiscoveryContract):
    entry_point = "otp_pro_sms_twilio"  # the entry-point name is the plugin's identity
    distribution = "otp-pro-sms-twilio"
    module = "otp_pro_sms_twilio.plugin"


def test_plugin_discovery_does_not_import_phonenumbers_or_twilio() -> None:
    """``otp-pro providers list`` discovers every plugin: phonenumbers and twilio wait until a message needs them."""
    probe = ("import sys\n"
             "from otp_pro.plugins import PluginHost\n"
             "host = PluginHost()\n"
             "host.collect_providers()\n"
             "assert 'otp_pro_sms_twilio' in {p.name for p in host.infos()}\n"
             "print(' '.join(m for m in ('phonenumbers', 'twilio') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []
