"""Twilio SMS transport for otp-pro (``sms_twilio``, channel ``sms_twilio:code``).

Skeleton: the issue that adds the Twilio transport will fill this module in
(transport registration, E.164 recipient resolution, the availability check
and the dry-run provider test). Nothing is registered yet: the module exists
so that the ``otp_pro`` entry point resolves and discovery can be tested.
"""
