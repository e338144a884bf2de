#!/usr/bin/env bash
# docs/DEPLOY.md followed on this machine, as an ordinary user on free high ports (CI runs it):
# the shipped environment file, migrate + install_schedules + collectstatic, the three systemd
# units' own ExecStart lines (web = gunicorn with deploy/gunicorn.conf.py, worker, beat), nginx
# with the shipped proxy directives in front; then events ingested through the proxy, a
# recompute by the worker that counts them, the console page and /readyz answering, and
# /metrics answering while slow clients trickle bodies to the proxy. Stops everything it started.
#
#   deploy/smoke.sh            # needs DATABASE_URL (a server where it may create a database) and REDIS_URL
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY="$REPO/.venv/bin/python"
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL server the smoke may create a database on}"
: "${REDIS_URL:?set REDIS_URL to the Redis database the worker and beat of the smoke may use}"

RUN=$(mktemp -d /tmp/opsconsole-smoke-XXXXXX)
chmod 755 "$RUN"
DB_NAME="opsconsole_smoke_$$"
SERVER_URL="${DATABASE_URL%/*}"
PIDS=()
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
step() { echo "==> smoke: $*"; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$SERVER_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$RUN"
}
trap cleanup EXIT
fail() { echo "smoke FAILED: $*" >&2; for log in "$RUN"/*.log; do echo "--- $log" >&2; tail -n 30 "$log" >&2; done; exit 1; }

APP_PORT=$(free_port)
PROXY_PORT=$(free_port)
PROXY="http://127.0.0.1:$PROXY_PORT"

step "step 3: the environment file (deploy/systemd/opsconsole.env, filled in)"
SMOKE_REDIS_URL="$REDIS_URL"
sed -e "s#^ALLOWED_HOSTS=.*#ALLOWED_HOSTS=127.0.0.1,localhost#" \
    -e "s#^CSRF_TRUSTED_ORIGINS=.*#CSRF_TRUSTED_ORIGINS=$PROXY#" \
    -e "s#^DATABASE_URL=.*#DATABASE_URL=$SERVER_URL/$DB_NAME#" \
    -e "s#^REDIS_URL=.*#REDIS_URL=$SMOKE_REDIS_URL#" \
    -e "s#^CELERY_BROKER_URL=.*#CELERY_BROKER_URL=$SMOKE_REDIS_URL#" \
    -e "s#^GUNICORN_BIND=.*#GUNICORN_BIND=127.0.0.1:$APP_PORT#" \
    -e "s#^GUNICORN_WORKERS=.*#GUNICORN_WORKERS=2#" \
    deploy/systemd/opsconsole.env > "$RUN/opsconsole.env"
# Plain HTTP here: no certificate on a CI box (step 7 of DEPLOY.md is certbot).
echo "SECURE_SSL_REDIRECT=0" >> "$RUN/opsconsole.env"
echo "SUPERVISOR_STATE_FILE=$RUN/run_console.json" >> "$RUN/opsconsole.env"
# The secrets as DEPLOY.md generates them: SECRET_KEY, and the /metrics token with Prometheus' copy.
"$PY" -m opsconsole.dotenv --production "$RUN/opsconsole.env" --metrics-token-file "$RUN/opsconsole_metrics_token" >/dev/null
grep -q '^METRICS_BEARER_TOKEN=.\{32,\}' "$RUN/opsconsole.env" || fail "no /metrics token was generated"
set -a; . "$RUN/opsconsole.env"; set +a

step "step 4: database, migrations, schedules, static files"
psql "$SERVER_URL/postgres" -qc "CREATE DATABASE $DB_NAME" >/dev/null
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py install_schedules -v 0 >/dev/null
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py check --deploy --fail-level ERROR >/dev/null 2>&1 || fail "manage.py check --deploy found an error"
DJANGO_SUPERUSER_PASSWORD=smoke-pass-1234 "$PY" manage.py createsuperuser --noinput --username founder --email f@example.com >/dev/null

step "step 5: the three systemd units' ExecStart lines"
for unit in web worker beat; do
  exec_start=$(sed -n 's/^ExecStart=//p' "deploy/systemd/opsconsole-$unit.service" | sed "s#/opt/opsconsole#$REPO#g")
  [ -n "$exec_start" ] || fail "no ExecStart in opsconsole-$unit.service"
  (cd "$REPO" && exec $exec_start) > "$RUN/$unit.log" 2>&1 &
  PIDS+=($!)
done

step "step 6: nginx with the shipped proxy configuration"
sed -e "s#@RUN_DIR@#$RUN#g" -e "s#@LISTEN@#127.0.0.1:$PROXY_PORT#" -e "s#@UPSTREAM@#127.0.0.1:$APP_PORT#" \
    -e "s#@PROXY_CONF@#$REPO/deploy/nginx/opsconsole-proxy.conf#" deploy/nginx/nginx-unprivileged.conf.in > "$RUN/nginx.conf"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$NGINX" -t -q -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" || fail "nginx refused the configuration"
"$NGINX" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" &
PIDS+=($!)

for _ in $(seq 60); do curl -fs "$PROXY/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "$PROXY/healthz" >/dev/null || fail "/healthz does not answer through the proxy"

step "step 8: /readyz, events through the proxy, the worker's recompute, the console page"
ready=$(curl -s -o "$RUN/readyz.json" -w '%{http_code}' "$PROXY/readyz")
[ "$ready" = 200 ] || fail "/readyz answered $ready: $(cat "$RUN/readyz.json")"
KEY=$("$PY" manage.py create_api_key smoke --scope ingest | tail -n 1)
"$PY" - > "$RUN/events.json" <<'PYTHON'
import json, uuid
agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
events = [{"event_id": str(uuid.uuid4()), "tenant_id": "acme", "user_id": f"u{i}", "event_type": "LOGIN",
           "metadata": {"user_agent": agent}} for i in range(200)]
print(json.dumps({"events": events}))
PYTHON
receipt=$(curl -fs -X POST "$PROXY/api/v1/events" -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" --data-binary "@$RUN/events.json") \
  || fail "ingest through the proxy failed"
echo "$receipt" | grep -q '"accepted":200' || fail "unexpected receipt: $receipt"
# The worker runs a recompute queued through the broker (beat's own */5 schedule is too slow for CI).
"$PY" manage.py shell -c "from customers.tasks import metrics_recompute_task; metrics_recompute_task.delay()" >/dev/null 2>&1 \
  || fail "could not queue a recompute"
for _ in $(seq 90); do
  tenants=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM ops_tenant_metrics WHERE tenant_id = 'acme'" 2>/dev/null || echo 0)
  [ "$tenants" = 1 ] && break; sleep 1
done
[ "$tenants" = 1 ] || fail "the worker did not recompute the ingested events"
grep -q "beat: Starting" "$RUN/beat.log" || fail "beat did not start"
# Log in through the proxy and open Today. The cookies are Secure (production settings), so
# curl is handed them by hand over this plain-HTTP hop.
curl -fs -c "$RUN/jar" "$PROXY/login/" -o /dev/null || fail "the login page does not answer"
csrf=$(awk '$6 == "csrftoken" {print $7}' "$RUN/jar")
curl -fs -c "$RUN/jar" -H "Cookie: csrftoken=$csrf" -H "Referer: $PROXY/login/" -o /dev/null \
  --data-urlencode "csrfmiddlewaretoken=$csrf" --data-urlencode username=founder --data-urlencode password=smoke-pass-1234 \
  "$PROXY/login/" || fail "login through the proxy failed"
session=$(awk '$6 == "sessionid" {print $7}' "$RUN/jar")
[ -n "$session" ] || fail "no session after login"
curl -fs -H "Cookie: sessionid=$session" "$PROXY/" -o "$RUN/today.html" || fail "Today does not answer"
grep -q "<h1>Today</h1>" "$RUN/today.html" || fail "Today did not render"

step "/metrics is closed without the token Prometheus was given"
open_metrics=$(curl -s -o /dev/null -w '%{http_code}' "$PROXY/metrics")
[ "$open_metrics" = 401 ] || fail "/metrics answered $open_metrics without a token"

step "slow clients through the proxy while /metrics is scraped (with Prometheus' token)"
DJANGO_SETTINGS_MODULE=opsconsole.settings "$PY" - "$PROXY" "$RUN/opsconsole_metrics_token" <<'PYTHON' || fail "/metrics stalled behind slow clients"
import sys
from pathlib import Path
from tests.proxy import scrapes_while_slow_clients_trickle
proxy, token = sys.argv[1], Path(sys.argv[2]).read_text().strip()
outcomes = scrapes_while_slow_clients_trickle(proxy + "/metrics", int(proxy.rsplit(":", 1)[1]), bearer_token=token)
print(f"    /metrics scrapes while slow clients trickled: {outcomes.count('200')} x 200, others: {[o for o in outcomes if o != '200']}")
sys.exit(0 if outcomes and set(outcomes) == {"200"} else 1)
PYTHON

for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a process exited during the smoke"; done
step "passed: nginx :$PROXY_PORT -> gunicorn :$APP_PORT, worker, beat; 200 events ingested and recomputed"
