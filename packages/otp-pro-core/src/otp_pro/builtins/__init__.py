"""Built-in plugins of otp-pro-core, registered through the same manager as external ones."""
