"""Branded HTML email for otp-pro (message templating).

Skeleton: the issue that adds HTML email will fill this module in (Jinja2
templates for subject, text and HTML, CSS inlined by premailer). Nothing is
registered yet: the module exists so that the ``otp_pro`` entry point
resolves and discovery can be tested.
"""
