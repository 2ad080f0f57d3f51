"""No Django models: otp-pro's tables are the core's (SQLAlchemy, migrated by Alembic; see :mod:`.schema`).

The module exists because Django sends ``post_migrate`` only to apps that have one, and that
signal is how every ``manage.py migrate`` brings otp-pro's tables to the core's newest revision.
"""
