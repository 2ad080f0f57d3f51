"""Magic links for otp-pro (payload ``magic_link``, channel ``email:magic_link``).

Skeleton: the issue that adds magic links will fill this module in (payload
registration, single-use link tokens, the availability check on the base
URL). Nothing is registered yet: the module exists so that the ``otp_pro``
entry point resolves and discovery can be tested.
"""
