#!/usr/bin/env bash
# Makes sure the servers MyMONIT needs on a development or CI machine are
# installed, running and reachable on loopback:
#
#   MariaDB   127.0.0.1:3306  (root, empty password, as the tests expect)
#   RabbitMQ  127.0.0.1:5672  (guest/guest)
#   Mosquitto 127.0.0.1:1883  (MQTT, anonymous; the mqttbridge tests)
#   nginx     installed only: the nginx tests (deploy/nginxcheck) run their
#             own instances on loopback high ports, nothing is started here
#
# Missing servers are installed with apt-get (as root); stopped ones are
# started. Servers that are already reachable are reused untouched, so the
# script is safe to run again and again (make run, make test and .ci/run call
# it). Set MYMONIT_SERVICES_NO_INSTALL=1 to refuse installing.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { # host port
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_port() { # name host port seconds
	local name=$1 host=$2 port=$3 secs=$4 i
	for ((i = 0; i < secs * 2; i++)); do
		port_open "$host" "$port" && return 0
		sleep 0.5
	done
	die "$name did not open $host:$port within ${secs}s"
}

apt_updated=0
apt_install() {
	[ "${MYMONIT_SERVICES_NO_INSTALL:-0}" = 1 ] && die "$* missing and MYMONIT_SERVICES_NO_INSTALL=1"
	[ "$(id -u)" = 0 ] || die "$* missing: install it (apt-get install $*) or run this script as root"
	if [ $apt_updated = 0 ]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_mariadb() {
	if ! port_open 127.0.0.1 3306; then
		command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
		log "starting MariaDB"
		install -d -o mysql -g mysql /run/mysqld
		if [ "$(id -u)" = 0 ]; then
			start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
		else
			/usr/sbin/mariadbd >/dev/null 2>&1 &
			disown
		fi
		wait_port MariaDB 127.0.0.1 3306 60
	fi
	# Tests connect over TCP as root with an empty password. A fresh Debian
	# install lets root in only through the unix socket: open TCP for it too.
	if ! mysql -uroot -h127.0.0.1 -P3306 -e 'SELECT 1' >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ] && mysql -uroot -e 'SELECT 1' >/dev/null 2>&1; then
			log "allowing root over TCP with an empty password (local development server)"
			mysql -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
				GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
				ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
				FLUSH PRIVILEGES;"
		else
			die "MariaDB is up on 127.0.0.1:3306 but root cannot log in with an empty password; set MYMONIT_TEST_MYSQL_DSN"
		fi
	fi
	log "MariaDB ready on 127.0.0.1:3306"
}

ensure_rabbitmq() {
	if ! port_open 127.0.0.1 5672; then
		command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server
		log "starting RabbitMQ"
		rabbitmq-server -detached >&2 || true
		wait_port RabbitMQ 127.0.0.1 5672 120
	fi
	# The port opens before the broker accepts logins; wait until it does.
	local i
	for ((i = 0; i < 60; i++)); do
		if command -v rabbitmqctl >/dev/null 2>&1; then
			rabbitmqctl -q await_startup >/dev/null 2>&1 && break
		else
			break
		fi
		sleep 1
	done
	log "RabbitMQ ready on 127.0.0.1:5672"
}

ensure_nginx() {
	if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
		apt_install nginx
	fi
	log "nginx installed ($(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1)); not started"
}

ensure_mosquitto() {
	if ! port_open 127.0.0.1 1883; then
		command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
		log "starting Mosquitto"
		# Debian's configuration writes its pid and log where the daemon user
		# may not have created them yet.
		if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
			install -d -o mosquitto -g mosquitto /run/mosquitto /var/log/mosquitto /var/lib/mosquitto
		fi
		"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c /etc/mosquitto/mosquitto.conf >&2
		wait_port Mosquitto 127.0.0.1 1883 30
	fi
	log "Mosquitto ready on 127.0.0.1:1883"
}

main() {
	local want=("$@")
	[ ${#want[@]} -gt 0 ] || want=(mariadb rabbitmq nginx mosquitto)
	for s in "${want[@]}"; do
		case $s in
		mariadb | mysql) ensure_mariadb ;;
		rabbitmq) ensure_rabbitmq ;;
		nginx) ensure_nginx ;;
		mosquitto | mqtt) ensure_mosquitto ;;
		*) die "unknown service $s (known: mariadb rabbitmq nginx mosquitto)" ;;
		esac
	done
}

main "$@"
