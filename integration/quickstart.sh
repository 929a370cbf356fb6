#!/usr/bin/env bash
# The quickstart: a demo PostgreSQL database with a running write workload,
# captured by `tributary run -f configs/quickstart.yaml` into the embedded
# log and registry. Stop with Ctrl-C. QUICKSTART_SECONDS=N stops after N s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/local/go/bin

# The same script the tests use prepares PostgreSQL (only that service here).
TRIBUTARY_SERVICES=pg bash integration/services/up.sh
# shellcheck disable=SC1091
source /tmp/tributary-services/env.sh
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
export PGPASSWORD=postgres
ADMIN="postgresql://postgres@127.0.0.1:55432/postgres"
DEMO="postgresql://postgres@127.0.0.1:55432/demo"

echo "quickstart: building bin/tributary"
go build -o bin/tributary ./cmd/tributary

echo "quickstart: creating the demo database (customers, orders) — a fresh one each run"
"${PSQL[@]}" "$ADMIN" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'demo'" >/dev/null
"${PSQL[@]}" "$ADMIN" -c "DROP DATABASE IF EXISTS demo WITH (FORCE)" -c "CREATE DATABASE demo"
"${PSQL[@]}" "$DEMO" -f integration/demo/schema.sql
export TRIBUTARY_DATA_DIR=${TRIBUTARY_DATA_DIR:-./data/quickstart}
rm -rf "$TRIBUTARY_DATA_DIR"

echo "quickstart: starting a write workload (pgbench, 20 transactions/s)"
"$TRIBUTARY_PG_BIN/pgbench" -n -c 1 -R 20 -T 86400 -f integration/demo/workload.sql "$DEMO" >/dev/null 2>&1 &
workload=$!
trap 'kill $workload 2>/dev/null || true' EXIT

cat <<'MSG'
quickstart: running `bin/tributary run -f configs/quickstart.yaml`: PostgreSQL → embedded log → SQLite copy.
  Watch the events from another shell:
    bin/tributary tail shop.public.orders --from-beginning --key -f configs/quickstart.yaml
    kcat -b 127.0.0.1:9092 -L                      # any Kafka client can read the embedded log
    curl -s 127.0.0.1:8081/subjects                # the embedded schema registry
    curl -s 127.0.0.1:8083/metrics | grep tributary_
    sqlite3 data/quickstart/copy.db 'select count(*) from public_orders'   # the local copy
  Press Ctrl-C to stop the workload; the copy is then verified against the source.
MSG
# The worker gets its own session so that Ctrl-C reaches only this script,
# which stops the workload, verifies the copy and then stops the worker.
setsid bin/tributary run -f configs/quickstart.yaml &
worker=$!
trap 'kill $workload 2>/dev/null || true; kill -TERM $worker 2>/dev/null || true' EXIT
interrupted=false
trap 'interrupted=true' INT
if [[ -n ${QUICKSTART_SECONDS:-} ]]; then
	sleep "$QUICKSTART_SECONDS" || true
else
	while ! $interrupted && kill -0 $worker 2>/dev/null; do sleep 1; done
fi
kill -0 $worker 2>/dev/null || { echo "quickstart: the worker stopped early" >&2; exit 1; }
echo
echo "quickstart: stopping the workload, then verifying the SQLite copy against PostgreSQL"
kill $workload 2>/dev/null || true
wait $workload 2>/dev/null || true
status=0
bin/tributary verify -f configs/quickstart.yaml shop-copy --wait 60s || status=$?
kill -TERM $worker
wait $worker || status=$?
exit $status
