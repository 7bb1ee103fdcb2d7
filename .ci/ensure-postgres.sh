#!/bin/sh
# Start Debian's PostgreSQL for the registry tests and print the URL to export, e.g. in .ci/run:
#   SPIDER_TEST_POSTGRES_URL=$(sh .ci/ensure-postgres.sh) && export SPIDER_TEST_POSTGRES_URL
# Needs root. Installs the `postgresql` package when missing, starts the newest cluster, and
# creates (once) a role and a database owned by it; each test then works in a schema of its own.
set -eu
if [ "$(id -u)" != 0 ]; then
    echo "not root: PostgreSQL is not started, its tests are skipped" >&2
    exit 1
fi
ROLE=spider_test
DATABASE=spider_test
PASSWORD=spider_test
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main"' | grep -q .; then
    pg_createcluster "$VERSION" main >&2
fi
pg_ctlcluster "$VERSION" main start >/dev/null 2>&1 || true  # already running is fine
for _ in $(seq 30); do
    pg_isready -q -h 127.0.0.1 && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 || { echo "PostgreSQL $VERSION did not start" >&2; exit 1; }
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $3}')
as_postgres() { su postgres -c "psql -v ON_ERROR_STOP=1 -p $PORT -tAc \"$1\""; }
if [ "$(as_postgres "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
    as_postgres "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$(as_postgres "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
    su postgres -c "createdb -p $PORT -O $ROLE $DATABASE" >&2
fi
as_postgres "ALTER DATABASE $DATABASE OWNER TO $ROLE" >/dev/null
echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
