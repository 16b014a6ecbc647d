#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the leaderboard's PostgreSQL test.
# Installs the Debian `postgresql` package when no server binaries are found, creates a fresh
# cluster in $PGDATA_DIR (default /tmp/affectlab-pg), listens on $PGPORT (default 54329) and
# prints the SQLAlchemy URL to export as AFFECTLAB_TEST_POSTGRES_URL. Stop it with
#   pg_ctl -D /tmp/affectlab-pg stop   (run as the postgres user when started as root)
set -euo pipefail
PGDATA_DIR=${PGDATA_DIR:-/tmp/affectlab-pg}
PGPORT=${PGPORT:-54329}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$bindir" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi

as_pg() {  # postgres refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if as_pg "$bindir/pg_isready" -h 127.0.0.1 -p "$PGPORT" -q; then
  echo "postgresql+psycopg://affectlab:affectlab@127.0.0.1:$PGPORT/affectlab"
  exit 0
fi
[ -f "$PGDATA_DIR/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" stop -m fast >/dev/null 2>&1 || true
rm -rf "$PGDATA_DIR"
mkdir -p "$PGDATA_DIR"
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
as_pg "$bindir/initdb" -D "$PGDATA_DIR" -A trust -U postgres >/dev/null
as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
  -o "-h 127.0.0.1 -p $PGPORT -k $PGDATA_DIR" start >/dev/null
as_pg "$bindir/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE ROLE affectlab LOGIN PASSWORD 'affectlab'" >/dev/null
as_pg "$bindir/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE affectlab OWNER affectlab" >/dev/null
echo "postgresql+psycopg://affectlab:affectlab@127.0.0.1:$PGPORT/affectlab"
