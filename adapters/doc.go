// Package adapters holds the MyMONIT feed adapters: each one, under cmd/,
// translates an external feed (line protocol, Prometheus scrapes, MQTT,
// CSV/JSONL files, HTTP push) into v1 measure messages on RabbitMQ.
package adapters
