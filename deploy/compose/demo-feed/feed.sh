#!/bin/sh
# Demo feed: every second, one line-protocol point for each of four
# temperature sensors, posted to the line-protocol adapter ($FEED_URL).
# A failed write is reported and retried on the next tick.
set -u
: "${FEED_URL:?FEED_URL is not set}"
i=0
while :; do
	now=$(date +%s)
	body=""
	for s in 1 2 3 4; do
		# 20.0 to 29.9 (°C), a slow saw tooth per sensor; the adapter names
		# the series temperature.value,sensor=<n>.
		v=$(( (i + s * 25) % 100 ))
		body="${body}temperature,sensor=$s value=2$((v / 10)).$((v % 10)) $now
"
	done
	if printf '%s' "$body" | curl -fsS --max-time 10 -X POST --data-binary @- "$FEED_URL"; then
		touch /tmp/last-write
	else
		echo "demo-feed: write to $FEED_URL failed, retrying" >&2
	fi
	i=$((i + 1))
	sleep 1
done
