"""Twilio SMS transport for otp-pro: the ``sms_twilio`` transport and the ``sms_twilio:code`` channel.

The plugin (hook implementations) lives in :mod:`otp_pro_sms_twilio.plugin`,
the transport in :mod:`otp_pro_sms_twilio.transport`.
"""

from __future__ import annotations

from .segments import SegmentInfo, count_segments
from .transport import TwilioSmsTransport

__version__ = "0.1.0"

__all__ = ["SegmentInfo", "TwilioSmsTransport", "__version__", "count_segments"]
