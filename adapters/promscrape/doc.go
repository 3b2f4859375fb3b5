// Package promscrape scrapes Prometheus exposition endpoints (the text format
// and OpenMetrics 1.0) at an interval and turns every sample into a v1 measure
// of the experiment configured for the target.
//
// # Mapping
//
// Every sample of the exposition becomes one measure; its sensor is the
// series, written in the Prometheus notation
//
//	name{label="value",...}
//
// with the labels sorted by name and values escaped as in the text format
// (\\, \" and \n), and just name when the series has no label. The labels are
// also the measure's tags, so they can be filtered on. Putting the labels in
// the sensor is what keeps two series of one metric apart: a measure is
// identified by (experiment, sensor, time), and with the labels only in the
// tags every series of a metric would overwrite the others.
//
// The sample names follow the metric type:
//
//	counter          name as exposed: the text format's family name (by
//	                 convention ending in _total), OpenMetrics' name_total
//	gauge, untyped   name
//	histogram        name_bucket{le="<upper bound>"} per bucket, name_sum, name_count
//	gauge histogram  name_bucket{le="<upper bound>"} per bucket, name_gsum, name_gcount
//	summary          name{quantile="<q>"} per quantile, name_sum, name_count
//
// A histogram always gets its le="+Inf" bucket (the count, when the exposition
// leaves it out). Upper bounds and quantiles are written in the shortest form
// that reads back as the same float64 (0.5, 1, 2.5e+06, +Inf), whatever the
// exposition wrote. OpenMetrics _created samples, exemplars and HELP text are
// not forwarded; an OpenMetrics UNIT becomes the measure's unit.
//
// Labels with an empty value are absent (as in Prometheus), and so are the
// exposed labels the target lists in drop_labels. The target's extra
// labels from the configuration are added to every sample; when the exposition
// has a label of the same name, the target's wins and the exposed one is kept
// as exported_<name> (Prometheus' honor_labels: false).
//
// The time of a measure is the sample's timestamp when the exposition gives
// one, else the time the scrape started. Values, times and tags must fit the v1
// contract: a sample whose value is NaN or infinite (a summary quantile with no
// observations, typically), whose series is longer than 128 bytes, or which has
// more than 32 labels, a label name longer than 64 bytes or a value longer than
// 256 bytes, is rejected with the reason, counted under the field at fault, and
// never stops its siblings. The 128 bytes of a sensor are the tightest of
// these limits for real exporters (a series with four or five labels may
// need more): drop_labels removes labels that do not tell series apart.
//
// # Formats
//
// The scraper asks for the text format first and OpenMetrics 1.0 (or 0.0.1)
// next, and parses whichever the target answers with (its Content-Type, read
// by expfmt.ResponseFormat; none or an unknown one is read as text). The text
// format is preferred because expfmt's OpenMetrics parser checks every line
// against the grammar and is a few hundred times slower: about 200 samples/s
// against about 90,000 for text on a 2-CPU machine (BenchmarkDecodeAndMap).
// A target that only speaks OpenMetrics is still scraped, slowly: keep its
// exposition small, or its timeout long.
//
// # Failures
//
// A scrape that fails (connection refused, timeout, HTTP status other than
// 200, body larger than the limit, an exposition that does not parse) is
// logged with the target and the reason, counted, and publishes nothing: as
// in Prometheus a scrape is taken whole or not at all. The next scrape happens
// at the next interval.
package promscrape
