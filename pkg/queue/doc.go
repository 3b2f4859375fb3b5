// Package queue carries measure messages over RabbitMQ (AMQP 0-9-1): the
// topology, a confirming Publisher, a reconnecting Consumer, and the
// dead-letter tools of the operator CLI.
//
// # Topology
//
//	adapters ──▶ Exchange (topic, durable) ──experiment.#──▶ Queue (durable, quorum|classic)
//	                                                          │ ingest rejects (NewDeadLetter + Publisher)
//	                                                          │ broker dead-letters (x-delivery-limit, nack without requeue)
//	                                                          ▼
//	                                    DeadExchange (fanout, durable) ──▶ DeadQueue (durable, same type)
//
// Config names them; Topology.Declare declares them idempotently (the
// consumer, and optionally the publisher, do on every connection) and
// Topology.DeclarePublishing declares only the exchange, for adapters. A
// quorum Queue has x-delivery-limit (Config.DeliveryLimit): a message
// returned to the queue that many times, typically because it crashes its
// consumer, is dead-lettered by the broker, at-least-once
// (x-dead-letter-strategy with x-overflow reject-publish). Classic queues
// have no delivery limit: a message that crashes every consumer is
// redelivered forever, which is one reason quorum is the default. Changing
// the type or these arguments of an existing queue is refused by the broker
// (PRECONDITION_FAILED): migrate by declaring a new queue name.
//
// # Publishing
//
// A Publisher owns one connection with one channel in confirm mode, opened
// on the first Publish (or by Connect). As in amqp091-go's client example,
// each connection registers its own NotifyClose, NotifyReturn and
// NotifyBlocked listeners, watched by a goroutine the connection owns and
// stops. Unlike it, there is no background reconnect loop: the next Publish
// that finds the connection dead dials a new one (one dialer at a time), so
// an idle publisher holds no retrying goroutine.
//
// Publish sends every message persistent and mandatory, pipelined (all
// messages first, with deferred confirms, then the wait), and returns once
// the broker confirmed them all. Concurrent callers share the channel; each
// waits only for its own confirms, so their messages are pipelined too.
// Messages that were nacked or lost with the connection are published again
// with exponential backoff until the context is done: delivery is
// at-least-once and consumers must be idempotent, which measures are
// (identity experiment, sensor, time).
//
// A confirm alone does not prove a message reached a queue: with no queue
// bound for its routing key the broker drops it and confirms it anyway.
// Publish therefore sets the mandatory flag and reports the messages the
// broker returned by an *UnroutableError (ErrUnroutable) while the others of
// the call are delivered. It does not retry them, since waiting rarely fixes
// a routing key; an adapter that publishes before ingest ever declared the
// queue gets this error rather than losing data silently. Publishing to an
// exchange that does not exist would close the channel every caller shares,
// so the Publisher first checks other exchanges with a passive declare on a
// channel of their own (ErrExchangeNotFound).
//
// The broker may block publishing connections (memory or disk alarm);
// Publish then waits for the unblock or its context rather than block in a
// socket write no context can interrupt.
//
// # Consuming and the ack contract
//
// Consumer.Run consumes the queue with manual acks and a prefetch window
// and hands each session's delivery channel to a Handler; the contract
// between them is documented on Handler. In short: ack (possibly multiple)
// only after the work is durable; poison is published to the dead exchange
// and then acked, never requeued; acks of a lost session fail and are
// ignored, because the broker redelivers those messages. On loss Run
// reconnects with backoff and re-declares. On shutdown it follows
// amqp091-go's consumer example: basic.cancel so the broker stops
// delivering, wait for the handler to finish and ack its in-flight work,
// then close channel and connection, which requeues anything left unacked.
// Before closing, Run waits a short grace (200ms): RabbitMQ 3.10 quorum
// queues buffer acks inside the broker when many are in flight and forget
// the buffered ones when the channel closes at once, so without the grace
// acked messages would be redelivered (measured: up to 2/3 of 1000 acks sent
// just before the close). ReplayDeadLetters waits the same way.
//
// # Dead letters
//
// A dead letter made by NewDeadLetter carries the reason in words
// (HeaderReason), the original routing key and message ID, when it was
// rejected and, from the original, the producer. A message the broker
// dead-lettered itself carries x-death instead; ListDeadLetters words its
// reason as "rejected by broker: ...". ListDeadLetters reads the dead queue
// without consuming it (basic.get without ack, then closing the channel
// requeues); ReplayDeadLetters publishes dead letters back to their original
// routing key with HeaderReplayCount incremented and acks each only after
// its copy was confirmed, so it never loses one.
//
// # Metrics
//
// With a prometheus.Registerer in the params, the Publisher counts
// mymonit_queue_published_total, mymonit_queue_publish_retries_total,
// mymonit_queue_publish_unroutable_total and
// mymonit_queue_publisher_reconnects_total, and the Consumer
// mymonit_queue_consumer_reconnects_total.
package queue
