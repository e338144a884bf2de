#!/usr/bin/env bash
# A local three-node Citus cluster (a coordinator and two workers on this machine) for CI and the bench:
#   deploy/citus/cluster.sh start [DBNAME...]   build Citus if needed, start the nodes, create each database on every node
#   deploy/citus/cluster.sh stop
# Three nodes on one box test correctness and measure overheads, not speed-up.
# Ports: CITUS_PORT (coordinator, default 5440), then the next two for the workers. Data under CITUS_DIR (default var/citus).
# Citus itself is built from the shared release source when pg_config's library directory lacks it.
set -euo pipefail
cd "$(dirname "$0")/../.."

port=${CITUS_PORT:-5440}
dir=${CITUS_DIR:-$PWD/var/citus}
bin=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
ports=("$port" $((port + 1)) $((port + 2)))
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_on() { local p=$1; shift; psql -h 127.0.0.1 -p "$p" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

start() {
  if [ ! -f "$(pg_config --pkglibdir)/citus.so" ]; then
    # The release source and its build script (CITUS_SOURCE, or the shared folder beside the checkout).
    local source=${CITUS_SOURCE:-}
    for candidate in "$source" ../shared/citus /work/shared/citus; do
      [ -n "$candidate" ] && [ -f "$candidate/install.sh" ] && { source=$candidate; break; }
    done
    [ -f "$source/install.sh" ] || { echo "Citus is not installed and no install.sh was found (set CITUS_SOURCE)" >&2; exit 1; }
    bash "$source/install.sh"
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  for p in "${ports[@]}"; do
    local data="$dir/node$p"
    if [ ! -f "$data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
      cat >>"$data/postgresql.conf" <<CONF
port = $p
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'citus'
max_connections = 300
max_prepared_transactions = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
citus.shard_count = ${CITUS_SHARD_COUNT:-4}
CONF
    fi
    if ! pg_isready -h 127.0.0.1 -p "$p" -q; then
      as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w start >/dev/null
    fi
  done
  for db in "${@:-}"; do
    [ -n "$db" ] || continue
    for p in "${ports[@]}"; do
      if [ -z "$(psql_on "$p" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
        psql_on "$p" -d postgres -c "CREATE DATABASE \"$db\""
      fi
      psql_on "$p" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS citus"
    done
    psql_on "$port" -d "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $port)" >/dev/null
    for p in "${ports[@]:1}"; do
      psql_on "$port" -d "$db" -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null
    done
  done
  echo "Citus coordinator on 127.0.0.1:$port, workers on ${ports[1]} and ${ports[2]}"
}

stop() {
  for p in "${ports[@]}"; do
    [ -f "$dir/node$p/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$dir/node$p" -m fast -w stop >/dev/null 2>&1 || true
  done
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start [DBNAME...] | stop" >&2; exit 2 ;;
esac
