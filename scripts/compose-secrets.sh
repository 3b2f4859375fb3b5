#!/usr/bin/env bash
# Creates the secret files of the compose stack (deploy/compose/compose.yaml)
# for local use: random passwords, the files derived from them (DSN, AMQP
# URL, RabbitMQ and Kibana credential snippets) and a self-signed TLS
# certificate for nginx. Run it before the first `docker compose up`:
#
#   scripts/compose-secrets.sh && docker compose -f deploy/compose/compose.yaml up -d
#
# Existing passwords are kept, so running it again is safe (a MySQL or
# Elasticsearch volume keeps the password it was created with); the derived
# files are rewritten from them. -f regenerates everything (then remove the
# volumes: docker compose -f deploy/compose/compose.yaml down -v).
#
# Environment:
#   MYMONIT_SECRETS_DIR              where to write (default deploy/compose/secrets)
#   MYMONIT_TLS_HOSTNAME             extra DNS name in the certificate (default: none)
#   MYMONIT_FIREBASE_CREDENTIALS     a Firebase service-account key (JSON) to copy
#                                    into the stack; without it a placeholder
#                                    is written and the api will not start
#
# The directory is private to you (0700); the files are readable (0644)
# because compose bind-mounts them into containers running as other users.
set -euo pipefail

log() { printf 'compose-secrets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${MYMONIT_SECRETS_DIR:-$root/deploy/compose/secrets}
force=0
case "${1:-}" in
"") ;;
-f) force=1 ;;
*) die "usage: $0 [-f]" ;;
esac
command -v openssl >/dev/null 2>&1 || die "openssl is needed (apt-get install openssl)"

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

write() { # name content
	printf '%s\n' "$2" >"$dir/$1.tmp"
	chmod 0644 "$dir/$1.tmp"
	mv "$dir/$1.tmp" "$dir/$1"
}

# password NAME: the existing password in NAME, or a new random one.
password() {
	local f=$dir/$1
	if [ $force = 0 ] && [ -s "$f" ]; then
		head -n1 "$f"
		return
	fi
	local p
	p=$(openssl rand -hex 24)
	write "$1" "$p"
	log "created $1"
	printf '%s\n' "$p"
}

mysql_root=$(password mysql_root_password)
mysql_pw=$(password mysql_password)
rabbit_pw=$(password rabbitmq_password)
elastic_pw=$(password elastic_password)
kibana_pw=$(password kibana_system_password)
logstash_pw=$(password logstash_password)
kibana_key=$(password kibana_encryption_key)
: "$mysql_root"

# Derived files, always consistent with the passwords above.
write mysql_dsn "mymonit:$mysql_pw@tcp(mysql:3306)/mymonit"
write amqp_url "amqp://mymonit:$rabbit_pw@rabbitmq:5672/"
write rabbitmq_credentials.conf "default_user = mymonit
default_pass = $rabbit_pw"
write kibana_credentials.yml "elasticsearch.username: kibana_system
elasticsearch.password: \"$kibana_pw\"
xpack.encryptedSavedObjects.encryptionKey: \"$kibana_key\"
xpack.security.encryptionKey: \"$kibana_key\"
xpack.reporting.encryptionKey: \"$kibana_key\""
: "$elastic_pw" "$logstash_pw"

# The Firebase service-account key of the api.
if [ -n "${MYMONIT_FIREBASE_CREDENTIALS:-}" ]; then
	[ -r "$MYMONIT_FIREBASE_CREDENTIALS" ] || die "MYMONIT_FIREBASE_CREDENTIALS=$MYMONIT_FIREBASE_CREDENTIALS: not a readable file"
	write firebase_credentials.json "$(cat "$MYMONIT_FIREBASE_CREDENTIALS")"
	log "copied the Firebase service-account key"
elif [ ! -s "$dir/firebase_credentials.json" ]; then
	write firebase_credentials.json '{"type":"placeholder","note":"replace with the service-account key of your Firebase project (MYMONIT_FIREBASE_CREDENTIALS=key.json scripts/compose-secrets.sh)"}'
	log "warning: firebase_credentials.json is a placeholder: the api will not start until it holds a service-account key (MYMONIT_FIREBASE_CREDENTIALS=key.json $0)"
fi

# Self-signed certificate for nginx, for local use only.
if [ $force = 1 ] || [ ! -s "$dir/nginx_tls_cert" ] || [ ! -s "$dir/nginx_tls_key" ]; then
	san="DNS:localhost,IP:127.0.0.1,IP:::1"
	[ -z "${MYMONIT_TLS_HOSTNAME:-}" ] || san="DNS:$MYMONIT_TLS_HOSTNAME,$san"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
		-subj "/CN=${MYMONIT_TLS_HOSTNAME:-localhost}/O=MyMONIT local" \
		-addext "subjectAltName=$san" \
		-addext "keyUsage=critical,digitalSignature" \
		-addext "extendedKeyUsage=serverAuth" \
		-keyout "$dir/nginx_tls_key.tmp" -out "$dir/nginx_tls_cert.tmp" 2>/dev/null ||
		die "openssl could not create the certificate"
	chmod 0644 "$dir/nginx_tls_key.tmp" "$dir/nginx_tls_cert.tmp"
	mv "$dir/nginx_tls_key.tmp" "$dir/nginx_tls_key"
	mv "$dir/nginx_tls_cert.tmp" "$dir/nginx_tls_cert"
	log "created a self-signed certificate for $san (valid 365 days)"
fi
log "secrets ready in $dir"
