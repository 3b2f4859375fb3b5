#!/bin/bash
# Sets the password of Kibana's built-in kibana_system user and creates the
# user Logstash writes with (role: create documents in the mymonit-* data
# streams and indices, nothing else). Idempotent: run at every start of the
# compose stack. Passwords come from the compose secrets.
set -euo pipefail
es=${ELASTICSEARCH_URL:-http://elasticsearch:9200}
auth="elastic:$(cat /run/secrets/elastic_password)"

call() { # method path body
	local code
	code=$(curl -sS -o /tmp/answer -w '%{http_code}' -u "$auth" -X "$1" "$es$2" \
		-H 'Content-Type: application/json' --data-binary @- <<<"$3")
	if [ "${code:0:1}" != 2 ]; then
		echo "setup-users: $1 $2: HTTP $code: $(cat /tmp/answer)" >&2
		exit 1
	fi
	echo "setup-users: $1 $2: HTTP $code"
}

json_string() { # escapes a value for a JSON string (hex passwords need none, but be safe)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' <<<"$1"
}

kibana_pw=$(json_string "$(cat /run/secrets/kibana_system_password)")
logstash_pw=$(json_string "$(cat /run/secrets/logstash_password)")

call POST /_security/user/kibana_system/_password "{\"password\":\"$kibana_pw\"}"
call PUT /_security/role/mymonit_logstash_writer '{
  "cluster": ["monitor"],
  "indices": [{
    "names": ["mymonit-*"],
    "privileges": ["create_doc", "create_index", "auto_configure", "view_index_metadata"]
  }]
}'
call PUT /_security/user/mymonit_logstash "{\"password\":\"$logstash_pw\",\"roles\":[\"mymonit_logstash_writer\"],\"full_name\":\"MyMONIT Logstash writer\"}"
