// Package sink is the shared back end of the MyMONIT adapters: it takes
// measures from an adapter's source, batches them into v1 measure messages,
// publishes them to RabbitMQ with confirms, and tells the adapter when its
// measures are safe.
//
// # Using it
//
// An adapter turns its input into measure.Measure values and hands them to
// Sink.Add, which returns a *Ticket:
//
//	t, err := s.Add(ctx, ms...)        // waits while the buffer is full
//	for _, r := range t.Rejected() {   // invalid measures, not queued
//		report(r.Index, r.Reason)      // e.g. "value: must be a finite number, got NaN"
//	}
//	if err != nil { ... }              // ctx done or sink closing: only t.Queued() were queued
//	if err := t.Wait(ctx); err != nil { ... } // nil: every queued measure is confirmed
//
// Acknowledge upstream (answer the HTTP request, ack the MQTT QoS 1 message,
// write the checkpoint) only after Wait returned nil, or Done() is closed and
// Err() is nil. Add never blocks on the broker itself, so one goroutine may
// add many feeds and wait for their tickets elsewhere.
//
// Items that never become measures (a line that does not parse, a refused
// request) are counted with Sink.Reject(reason, n), so that the metrics
// account for everything the adapter received.
//
// # Batching and routing
//
// Measures are grouped per experiment: a message holds measures of one
// experiment only, is published with routing key measure.RoutingKey(experiment)
// and its body is measure.Encode's {"measures":[...]}. A message closes when it
// holds Settings.BatchSize measures (or about 3 MiB), or Settings.FlushInterval
// after its first measure. Settings.InFlight workers publish closed messages,
// several per Publish call
// (about 4096 measures' worth, 4 to 256 messages), persistent, mandatory, with publisher confirms;
// queue.Publisher re-publishes what a lost connection or a nack left
// unconfirmed, reconnecting with backoff. An attempt still unconfirmed after
// Settings.PublishTimeout makes Ready fail (/readyz 503) and is made again:
// delivery is at-least-once, which is harmless because a measure's identity
// (experiment, sensor, time) makes a repeat overwrite itself.
//
// Add validates every measure (measure.Measure.Validate) and leaves out the
// invalid ones, so one bad measure never costs its siblings a message.
// A message the broker cannot route (no queue bound for the experiment) fails
// its tickets with an error wrapping queue.ErrUnroutable; it is not retried.
//
// # Backpressure
//
// The sink holds at most Settings.Buffer measures, counted from Add until
// their confirm. Add waits for room, and returns an error when its context
// ends first or Close begins; there is no unbounded queue anywhere.
//
// # Shutdown
//
// Close stops accepting measures, publishes what is pending at once and waits
// for the last confirms, bounded by its context; measures still unconfirmed
// then fail their tickets (reason not_published).
//
// # Configuration
//
// Config gathers what every adapter reads from the environment with
// pkg/config: logging (MYMONIT_LOG_*), the broker (MYMONIT_AMQP_*) and
// Settings (MYMONIT_ADAPTER_BATCH_SIZE, _FLUSH_INTERVAL, _BUFFER, _IN_FLIGHT,
// _PUBLISH_TIMEOUT, _HTTP_ADDR, _SHUTDOWN_TIMEOUT, _DECLARE_TOPOLOGY). An
// adapter embeds Config in its own struct, loads it with config.Load, binds
// flags with Config.BindFlags (flags override the environment), then calls
// Config.Check.
//
// # Wiring
//
// With fx, a command composes
//
//	fx.New(sink.Supply(cfg.Adapter, "lineproto", version),
//		logging.Module, queue.Module, sink.Module, <its own module>)
//
// and gets *Sink, *health.Server (/healthz, /readyz, /metrics on
// MYMONIT_ADAPTER_HTTP_ADDR) and *prometheus.Registry. The sink closes after
// the components that depend on it stopped. Without fx: New with a
// *queue.Publisher (connected and closed by the caller), Start, and Close.
//
// # Metrics
//
// All carry the label adapter=<producer>:
// mymonit_adapter_measures_received_total,
// mymonit_adapter_measures_published_total (confirmed),
// mymonit_adapter_messages_published_total,
// mymonit_adapter_measures_rejected_total{reason} (invalid, unroutable,
// not_published, encode_error, and the adapters' own reasons),
// mymonit_adapter_publish_retries_total, mymonit_adapter_buffer_measures,
// mymonit_adapter_buffer_capacity and the histogram
// mymonit_adapter_confirm_seconds (message closed to confirmed).
package sink
