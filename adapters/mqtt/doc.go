// Package mqtt bridges an MQTT broker to the MyMONIT measures exchange: it
// subscribes to topic filters with QoS 1, maps each message's topic and
// payload to measures by configurable rules, and acknowledges the message to
// the MQTT broker only once RabbitMQ confirmed its measures.
//
// # Rules
//
// A rules file lists rules; the first rule whose topic filter matches a
// message's topic applies (in file order), and every distinct filter is
// subscribed:
//
//	rules:
//	  - topic: lab/+/+/temperature     # MQTT filter: + one level, # the rest
//	    experiment: "{1}"              # {1}, {2}...: the levels the + matched
//	    sensor: "{2}/temperature"      # {#}: the levels # matched, joined by /
//	    unit: degC                     # optional, unless the payload has one
//	    tags: {room: "{2}"}            # optional, templates too
//	    payload: auto                  # auto (default), number, json, measure
//	  - topic: plant/#
//	    experiment: plant
//	    sensor: "{#}"                  # plant/hall/a/power -> hall/a/power
//
// {topic} is the whole topic. The experiment and sensor produced must fit the
// v1 contract (an experiment slug, a sensor of at most 128 bytes); the
// experiment must also be registered for ingest to store the measures.
//
// # Payloads
//
// With payload: auto a payload is read as:
//
//   - a plain number, such as 21.5, -3 or 1e-6 (text, surrounding blanks
//     ignored; NaN and infinities refused): the value;
//   - a JSON object with value and optional time, unit and tags:
//     {"value": 21.5, "time": "2026-11-23T10:00:00Z", "unit": "degC",
//     "tags": {"probe": "p1"}}. time is RFC 3339 or a number of Unix seconds
//     (fraction allowed); unit replaces the rule's; tags are added over the
//     rule's. Other fields are refused by name;
//   - a v1 contract message, a JSON object with an experiment (one measure)
//     or measures (a batch) field: decoded by measure.Decode and published
//     as it is, the rule's templates unused. In a batch the valid items are
//     published and the invalid ones rejected, each with its reason.
//
// number, json and measure accept only the plain number, only the JSON
// number or object, and only the v1 contract. A measure without a time in
// its payload gets the time the bridge received it: a message delivered twice
// (after a crash, see below) then becomes two measures, while a payload time
// makes the second delivery overwrite the first (identity experiment, sensor,
// time). Producers that can should send the time.
//
// # Bad messages
//
// A message that cannot be used — no rule matches its topic, the payload does
// not read as above, is larger than the limit, or every measure breaks the
// v1 contract — is logged with its topic and the reason, counted
// (mymonit_mqtt_messages_rejected_total{reason}), and acknowledged, so that
// the broker does not deliver it again forever. Messages beside it are not
// affected. Retained messages, which the broker replays at every
// subscription, are skipped unless Config.AcceptRetained.
//
// # Delivery
//
// The session is persistent (clean session off, a fixed client id), so the
// broker keeps the subscriptions and the QoS 1 messages not acknowledged
// while the bridge is away, and delivers them when it comes back. A message
// is acknowledged after the sink's ticket for its measures settled without
// error, in the order messages arrived; a bridge that stops or crashes
// before that leaves it unacknowledged, and the broker delivers it again:
// nothing confirmed is lost, and what is delivered twice is published twice
// (harmless when the payload carries the time). A message whose measures
// could not be published (no queue bound for the experiment) is left
// unacknowledged too, logged, and comes back in the next session.
//
// The broker sends a client at most its in-flight window of unacknowledged
// QoS 1 messages (Mosquitto's max_inflight_messages, 20 by default) and
// queues the rest. Since acknowledgements wait for the confirms, which
// arrive about one flush interval (MYMONIT_ADAPTER_FLUSH_INTERVAL) after a
// message, one bridge carries at most about window / flush interval messages
// per second: raise max_inflight_messages (0 is unlimited) for faster feeds.
package mqtt
