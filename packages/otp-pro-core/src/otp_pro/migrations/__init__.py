"""Alembic migrations shipped with otp-pro-core (``script_location = otp_pro:migrations``)."""
