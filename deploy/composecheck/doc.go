// Package composecheck holds the offline checks of the compose stack
// (deploy/compose): no Docker engine runs where the tests do, so the tests
// load compose.yaml strictly with compose-go, the library docker compose
// itself uses, and check what a reviewer would: which ports are published,
// that secrets are files and never values, healthchecks and start order,
// pinned images, that every mounted file exists and that the log files the
// servers write are the ones Filebeat reads.
package composecheck
