"""``python -m otp_pro`` runs the ``otp-pro`` command line."""

from .cli import main

main()
