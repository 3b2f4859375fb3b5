#!/usr/bin/env bash
# The Firebase Auth Emulator for development and tests, from the
# firebase-tools version pinned in services/api/firebase/package-lock.json.
#
#   scripts/firebase-emulator.sh ensure   install node_modules (npm ci) when missing or older than the lockfile;
#                                         installs nodejs and npm with apt-get when missing (as root)
#   scripts/firebase-emulator.sh start    ensure, then start the emulator in the background on
#                                         127.0.0.1:$PORT unless something already answers there;
#                                         waits until ready; pid in .run/firebase-auth-emulator.pid
#   scripts/firebase-emulator.sh stop     stop the emulator this script started
#
# Environment: MYMONIT_AUTH_EMULATOR_PORT (9099), MYMONIT_FIREBASE_PROJECT_ID
# (demo-mymonit). Use it with
#   FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099 MYMONIT_MODE=dev MYMONIT_FIREBASE_PROJECT_ID=demo-mymonit
# Set MYMONIT_SERVICES_NO_INSTALL=1 to refuse installing Node.js.
#
# Fallback if the starter breaks after a firebase-tools upgrade:
#   (cd services/api/firebase && npx firebase emulators:start --only auth --project demo-mymonit)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/services/api/firebase
run=$root/.run
pidfile=$run/firebase-auth-emulator.pid
logfile=$run/firebase-auth-emulator.log
host=127.0.0.1
port=${MYMONIT_AUTH_EMULATOR_PORT:-9099}
project=${MYMONIT_FIREBASE_PROJECT_ID:-demo-mymonit}

log() { printf 'firebase-emulator: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

answering() { # the emulator's root endpoint answers 200
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -o /dev/null --max-time 2 "http://$host:$port/" 2>/dev/null
	else
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
	fi
}

ensure_node() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
	[ "${MYMONIT_SERVICES_NO_INSTALL:-0}" = 1 ] && die "node/npm missing and MYMONIT_SERVICES_NO_INSTALL=1"
	[ "$(id -u)" = 0 ] || die "node/npm missing: install Node.js 20 or later (apt-get install nodejs npm) or run this script as root"
	log "apt-get install nodejs npm"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
}

ensure() {
	ensure_node
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	[ "$major" -ge 20 ] || die "Node.js $(node --version) is too old: firebase-tools needs 20 or later"
	# npm ci writes node_modules/.package-lock.json: older than the lockfile
	# means the lockfile changed since the last install.
	if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
		log "npm ci in services/api/firebase (a few minutes on a fresh machine)"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	fi
}

start() {
	if answering; then
		log "already answering on $host:$port"
		return 0
	fi
	ensure
	mkdir -p "$run"
	log "starting the auth emulator on $host:$port for project $project"
	local t0=$SECONDS
	(cd "$dir" && exec setsid node start-auth-emulator.js --host "$host" --port "$port" --project "$project") \
		>"$logfile" 2>&1 </dev/null &
	echo $! >"$pidfile"
	local pid i
	pid=$(cat "$pidfile")
	for ((i = 0; i < 120; i++)); do
		if grep -q '^auth emulator ready' "$logfile" 2>/dev/null; then
			log "ready on $host:$port after $((SECONDS - t0))s (pid $pid, log .run/firebase-auth-emulator.log)"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { cat "$logfile" >&2; rm -f "$pidfile"; die "the emulator exited"; }
		sleep 0.5
	done
	cat "$logfile" >&2
	stop
	die "not ready on $host:$port within 60s"
}

stop() {
	[ -f "$pidfile" ] || { log "not started by this script (no .run/firebase-auth-emulator.pid)"; return 0; }
	local pid i
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for ((i = 0; i < 20; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$pid" 2>/dev/null && { log "pid $pid ignores SIGTERM: SIGKILL"; kill -KILL "$pid"; }
	fi
	rm -f "$pidfile"
	log "stopped"
}

case "${1:-}" in
ensure) ensure ;;
start) start ;;
stop) stop ;;
*) die "usage: $0 ensure|start|stop" ;;
esac
