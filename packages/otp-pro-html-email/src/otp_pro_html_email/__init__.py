"""Branded HTML email for otp-pro. The plugin lives in :mod:`otp_pro_html_email.plugin`."""

__version__ = "0.1.0"
