"""Twilio SMS transport for otp-pro. The plugin lives in :mod:`otp_pro_sms_twilio.plugin`."""

__version__ = "0.1.0"
