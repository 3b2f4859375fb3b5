// Package measure defines the v1 measure message, the contract between the
// adapters that publish measures and the ingest service that stores them:
// its Go form (Measure), its JSON wire form (Encode, EncodeOne, Decode), its
// validation rules (Measure.Validate) and its routing (RoutingKey).
//
// # Wire form
//
// A message body (content type ContentType) holds either one measure
//
//	{"experiment":"atlas-pixel","sensor":"hv/module-12/current","time":"2026-11-23T10:00:00.123456Z","value":1.25,"unit":"uA","tags":{"rack":"r3"}}
//
// or a batch of 1 to MaxBatch measures:
//
//	{"measures":[{...},{...}]}
//
// Publishers should batch: one AMQP message per measure costs about ten
// times the throughput. The whole body is at most MaxMessageBytes.
//
// # Rules
//
//   - experiment: required, matches ExperimentPattern
//     (^[a-z0-9][a-z0-9._-]{0,63}$).
//   - sensor: required, valid UTF-8, 1 to MaxSensorBytes bytes, no control
//     characters.
//   - time: required, an RFC 3339 string, with or without a fraction of a
//     second, in any offset; 'T' and 'Z' may be lower case. It is normalised
//     to UTC and truncated to the microsecond: that is the stored identity of
//     the measure, (experiment, sensor, time). Its UTC year lies in
//     MinYear..MaxYear.
//   - value: required, a JSON number that is a finite float64. JSON cannot
//     spell NaN or infinities, and strings such as "NaN" are refused with a
//     reason; numbers beyond the float64 range are refused, numbers too small
//     for it round to zero.
//   - unit: optional, valid UTF-8, at most MaxUnitBytes bytes.
//   - tags: optional, an object of at most MaxTags string values; keys are 1
//     to MaxTagKeyBytes bytes, values at most MaxTagValueBytes bytes, both
//     valid UTF-8.
//   - Field names are matched exactly (case-sensitively); an unknown or
//     repeated field is an error that names it. null counts as absent for the
//     optional unit and tags, and as a wrong type for the required fields.
//
// # Decoding, and what happens to a mixed batch
//
// Decode separates two kinds of failure. A message that is unusable as a
// whole — larger than MaxMessageBytes, not JSON, not an object, an object
// that is neither a measure nor a batch, a batch with no items or more than
// MaxBatch, JSON nested deeper than a few dozen levels — is an error, whose
// text says what is wrong and where; the caller dead-letters the message.
//
// Otherwise Decode returns every measure it could read. In a batch, each
// item is decoded and validated on its own: the good ones are returned in
// Decoded.Measures in message order, and each bad one is returned in
// Decoded.Rejected with its index, its raw JSON and a reason such as
//
//	measure 3: value: must be a finite number, got "NaN"
//	measure 0: time: "yesterday" is not RFC 3339
//	measure 7: unknown field "valeu"; missing field "value"
//
// so a bad item never costs its siblings: the caller stores the good
// measures and dead-letters only the bad items, re-wrapped as a batch with
// EncodeRaw. A single-measure message that breaks a rule comes back the same
// way, as one Rejection with index 0 (and a reason without the "measure N: "
// prefix). Within one item all problems are reported, joined with "; ", up
// to a bounded count; quoted input in reasons is truncated, so a reason
// always fits in a message header.
//
// Decode never panics and its syntax checking is as strict as
// encoding/json's (FuzzDecode checks both, and that every accepted measure
// encodes and decodes back to itself).
//
// # Encoding
//
// Encode and EncodeOne validate before they encode and always write time as
// RFC 3339 in UTC with exactly six fractional digits, so equal identities
// are equal strings. Tags are written in key order.
//
// # Speed
//
// Decode is a hand-written single-pass scanner specialised for this schema,
// not encoding/json: it allocates little more than the strings and maps it
// returns (repeated short strings within a message, such as the experiment,
// unit and tag names, share one allocation). Run BenchmarkDecodeBatch100 and
// BenchmarkDecodeSingle for current figures.
package measure
