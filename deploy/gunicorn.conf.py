"""gunicorn configuration for Ops Console (docs/DEPLOY.md): ``gunicorn -c deploy/gunicorn.conf.py``.

gunicorn sits behind nginx (deploy/nginx/opsconsole.conf), which buffers every request
body and every response: a client that sends one byte every few seconds holds an nginx
connection (cheap, event-driven), never a Django worker. Each value can be overridden by
the environment variable named beside it, read here and nowhere else.
"""

from __future__ import annotations

import multiprocessing
import os

wsgi_app = "opsconsole.wsgi:application"
# nginx proxies to this address; 127.0.0.1 only: the proxy is the way in.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")

# Sync workers are right behind a buffering proxy (gunicorn's own advice): nginx hands a
# worker a complete request and takes the response at memory speed, so no worker waits on
# a slow network. Two per core plus one keeps the CPU busy while a worker waits on PostgreSQL.
worker_class = "sync"
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * multiprocessing.cpu_count() + 1)))

# A request that takes longer than this is a stuck worker: it is killed and replaced. The
# slowest request (a full CSV export) takes a few seconds; behind nginx a slow client can
# no longer make a request take this long.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM (systemd stop, run_console's stop): finish the requests in flight first.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# A worker is replaced after this many requests (with jitter so they do not all restart at
# once): bounds the memory any slow leak can take.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500

# Header limits (gunicorn's defaults, stated): the body limit is nginx's client_max_body_size
# (2 MiB) and Django's INGEST_MAX_BYTES (1 MiB, the API's contract).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# nginx on the same host sets X-Forwarded-For/-Proto; trust it and nothing else.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Workers load the application after the fork: each opens its own database connections.
preload_app = False
