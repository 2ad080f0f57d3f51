"""``python -m otp_pro.cli`` runs the ``otp-pro`` command line, as ``python -m otp_pro`` does."""

from . import main

main()
