"""Magic links for otp-pro. The plugin lives in :mod:`otp_pro_magic_links.plugin`."""

__version__ = "0.1.0"
