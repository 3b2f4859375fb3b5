// Package logging builds the zap logger every MyMONIT service uses: JSON
// lines with Elastic Common Schema field names, redacted, written to stdout
// and shipped to Logstash.
//
// # Lines
//
// Every line carries @timestamp (RFC 3339, nanoseconds, UTC), log.level,
// message, log.origin {file.name, file.line, function}, ecs.version,
// service.name and service.version; log.logger when the logger is Named;
// error.stack_trace from error level up. zap.Error(err) is written as an
// ECS error object {message, type, stack_trace}. Keys containing dots
// ("event.action") and nested objects are the same field to Elasticsearch.
// Event, Audit, UserID and TraceID build the common ECS fields; audit
// events (every admin change and data read of the API) use Audit and
// UserID and never carry names or e-mail addresses.
//
// # Redaction
//
// One redacting core (NewRedactingCore) wraps the JSON core that writes
// each line, encoded once, to both stdout and the shipper, so nothing
// reaches either sink unredacted, including fields added with Logger.With,
// and both receive the same bytes. Three independent rules apply, as defence in depth:
//
//   - by type: a value implementing Sensitive is written as "[REDACTED]"
//     wherever it appears (a field, a struct field or map value reached
//     through zap.Any, an array element, a nested zap.Object). Secret and
//     Email are ready-made string types that print "[REDACTED]" through fmt
//     and encoding/json as well. Prefer them: they are the rule that does
//     not depend on naming.
//   - by key: a key matching IsSensitiveKey (password, token, authorization,
//     cookie, email, dsn, api_key, credentials..., by suffix, and the ECS
//     user.name, user.full_name, user.email) is redacted whatever its value,
//     at the top level, under namespaces, in nested objects and in the maps
//     and structs of reflected values (walked like encoding/json marshals
//     them: tags, omitempty, embedded structs).
//   - by content: the message and every string value pass through Scrub,
//     which masks e-mail addresses, URL and DSN passwords, key=value secrets,
//     JWTs and bearer tokens. Strings without '@', '=', "eyJ" or "bearer"
//     skip the patterns.
//
// What redaction cannot see: binary fields (zap.Binary) and numbers are
// redacted by key only; secrets in free text that match no pattern (a bare
// password in a message, a struct formatted with %v whose plain string
// fields hold secrets) are not found. Keep secrets in Secret values.
// Scrubbing is a few byte scans for ordinary strings and linear in the
// length of the others (a few microseconds per KiB at worst); avoid
// logging large bodies all the same.
// Stack traces name source files as the binary records them: build services
// with -trimpath.
//
// # Shipping
//
// The Logstash sink is a Shipper: a tcp input with the json_lines codec
// receives one JSON document per line. Logging never waits for Logstash:
// Write copies the line into a bounded queue (Options.BufferSize lines) and
// returns; when the queue is full the line is dropped and counted. One
// goroutine owned by the Shipper connects (jittered exponential backoff up
// to Options.MaxBackoff), writes batches with Options.WriteTimeout, and on
// a failure reconnects and retries the unfinished line once. Lines are not
// acknowledged by Logstash: those in flight when a connection breaks can be
// lost, and a line cut by a failed write can arrive truncated before its
// retry. Stdout always receives every line and stays the complete record
// (a container log collector can pick it up).
//
// Stats and Collector expose sent, dropped and reconnect counts and the
// connection state (mymonit_log_lines_shipped_total,
// mymonit_log_lines_dropped_total, mymonit_log_shipper_reconnects_total,
// mymonit_log_shipper_connected).
//
// # Lifecycle
//
// New starts the shipping goroutine; Close(ctx) stops it after sending what
// is queued, giving up when ctx is done or when Logstash is unreachable at
// that point, and waits for it. Give Close a context with a deadline. With
// fx, Module provides *Logging and *zap.Logger from an Options value and
// closes on stop. This package reads no environment variables; the service's
// configuration fills Options.
package logging
