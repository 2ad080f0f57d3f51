"""The load test's application: the demo site, configured from a JSON file, for gunicorn and Celery.

``bench/load.py`` writes the file and names it in ``OTP_PRO_LOAD_CONFIG``; every
gunicorn worker and the Celery worker build their own instance from it, so the
only things they share are the ones docs/deployment.md says must be shared: the
PostgreSQL database, the secret key (kept in the demo's store) and the broker.

    gunicorn -w 4 -k gthread --threads 4 --chdir bench "load_app:create_app()"
    celery -A load_app:celery_app worker -Q <queue>   (from bench/)
"""

from __future__ import annotations

import json
import os
from typing import Any

CONFIG_ENV = "OTP_PRO_LOAD_CONFIG"


def load_config() -> dict[str, Any]:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise SystemExit(f"{CONFIG_ENV} is not set: run bench/load.py, which sets it")
    with open(path, encoding="utf-8") as handle:
        config: dict[str, Any] = json.load(handle)
    return config


def build_site(config: dict[str, Any] | None = None) -> Any:
    """A DemoSite on the load test's database, delivering for real (no outbox rerouting)."""
    from otp_pro_flask.demo_site import DemoSite

    config = config or load_config()
    return DemoSite(config["store"], base_url=config["base_url"], overrides=config["overrides"], seed=False,
                    to_outbox=False)


def create_app() -> Any:
    """The gunicorn application factory (``'load_app:create_app()'``)."""
    site = build_site()
    site.app.extensions["otp_pro_demo"] = site
    return site.app


def __getattr__(name: str) -> Any:
    """``celery -A load_app:celery_app worker``: the Celery app of the same settings (built on first use)."""
    if name != "celery_app":
        raise AttributeError(f"module 'load_app' has no attribute {name!r}")
    from otp_pro.celery import worker_app

    value = worker_app(build_site().otp)
    globals()[name] = value
    return value
