#!/usr/bin/env bash
# `make run`: the whole system on one machine. Starts (or reuses) MariaDB and
# RabbitMQ, applies migrations, registers a demo experiment, starts ingest and
# api, feeds demo measures, prints what to try, and stops everything cleanly
# on Ctrl-C. Logs go to .run/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
# The api verifies Firebase ID tokens; locally against the Auth Emulator.
bash scripts/firebase-emulator.sh start

export MYMONIT_MYSQL_DSN="${MYMONIT_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/mymonit}"
export MYMONIT_AMQP_URL="${MYMONIT_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
export MYMONIT_INGEST_HTTP_ADDR="${MYMONIT_INGEST_HTTP_ADDR:-127.0.0.1:9101}"
export MYMONIT_API_HTTP_ADDR="${MYMONIT_API_HTTP_ADDR:-127.0.0.1:8080}"
export MYMONIT_LOG_LEVEL="${MYMONIT_LOG_LEVEL:-info}"
export MYMONIT_FIREBASE_PROJECT_ID="${MYMONIT_FIREBASE_PROJECT_ID:-demo-mymonit}"
export FIREBASE_AUTH_EMULATOR_HOST="${FIREBASE_AUTH_EMULATOR_HOST:-127.0.0.1:9099}"
export MYMONIT_MODE="${MYMONIT_MODE:-dev}"

mkdir -p .run
bin/ingest migrate
bin/ingest experiment create demo -name "Demo experiment" -description "synthetic temperatures from make run" -exist-ok

pids=()
cleanup() {
	echo
	echo "stopping..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	echo "stopped. Logs are in .run/."
}
trap cleanup EXIT
trap 'exit 0' INT TERM

bin/ingest serve >.run/ingest.log 2>&1 &
pids+=($!)
bin/api >.run/api.log 2>&1 &
pids+=($!)

wait_ready() { # name url
	for _ in $(seq 1 100); do
		if curl -fsS "$2" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	echo "$1 did not become ready at $2; see .run/$1.log" >&2
	exit 1
}
wait_ready ingest "http://$MYMONIT_INGEST_HTTP_ADDR/readyz"
wait_ready api "http://$MYMONIT_API_HTTP_ADDR/healthz"

bin/ingest feed-demo -experiment demo -sensors 4 -points 600

cat <<EOF

MyMONIT is running.
  ingest   http://$MYMONIT_INGEST_HTTP_ADDR/metrics   (readiness: /readyz)   log: .run/ingest.log
  api      http://$MYMONIT_API_HTTP_ADDR/v1/openapi.json                    log: .run/api.log
  Firebase Auth Emulator http://$FIREBASE_AUTH_EMULATOR_HOST (project $MYMONIT_FIREBASE_PROJECT_ID; stop: bash scripts/firebase-emulator.sh stop)

Try:
  curl -s http://$MYMONIT_INGEST_HTTP_ADDR/metrics | grep '^mymonit_ingest'
  mysql -uroot -h127.0.0.1 mymonit -e 'SELECT s.sensor, COUNT(*), MIN(m.time), MAX(m.time) FROM measures m JOIN series s ON s.id = m.series_id GROUP BY s.sensor'
  bin/ingest feed-demo -points 3600            # more demo data
  bin/ingest dlq list                          # dead letters and their reasons
  bin/ingest experiment list
  bin/api bootstrap-admin -uid <firebase uid>   # the first admin of the API

Press Ctrl-C to stop.
EOF
while true; do
	for p in "${pids[@]}"; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "a service exited; see .run/*.log" >&2
			exit 1
		fi
	done
	sleep 1
done
