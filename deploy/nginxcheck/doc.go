// Package nginxcheck holds the offline checks of the nginx configuration in
// nginx/ at the repository root. Its tests copy the configuration, point the
// upstream at loopback ports, run `nginx -t`, then serve it on 127.0.0.1 high
// ports in the foreground and send real requests through it: to two real api
// processes (TLS, redirect, load balancing, limits, headers, JSON access
// log) and to a small server-sent-events server (no buffering). The tests
// need the nginx binary (scripts/services.sh installs it) and fail without
// it.
package nginxcheck
