"""Where settings come from: the environment (or a ``.env`` file next to ``manage.py``), read here once,
and the few values every group of settings needs (the project's directories, DEBUG, the Redis and broker URLs)."""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# OPSCONSOLE_ENV_FILE names another file (tests point it at a temporary one); the
# first `make run` writes .env with a generated SECRET_KEY (opsconsole/dotenv.py).
environ.Env.read_env(env.str("OPSCONSOLE_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# CELERY_BROKER_URL (or REDIS_URL) selects a broker; without one, kombu's filesystem transport (settings/__init__.py).
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
