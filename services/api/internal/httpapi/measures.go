package httpapi

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/storage"
)

// Measures and sensors of an experiment.
//
// GET /v1/experiments/{id}/measures reads the measures of one experiment,
// visible as the experiment itself is (members, admins, auditors; a
// scientist that never was a member gets the 404 of an unknown experiment,
// one whose membership was revoked 403). Rows come in the order of
// the clustered key of the measures table, by series (sensors in the order
// they first appeared) then time, see storage.ReadMeasures; a page ends
// with an opaque cursor of its last (series, time) key, and the next page
// starts strictly after it. With every= the measures are summarised per
// time bucket by the database.
//
// JSON (the default) is paged: limit rows (default 1000, at most 10000),
// grouped by sensor (measurePage), and next_cursor while more follow. CSV (Accept: text/csv) is streamed: every
// row of the selection, or limit rows when given, written as they are read
// with constant memory and flushed every csvFlushRows rows (a client that
// takes nothing for csvStallTimeout loses the stream). Once a CSV
// response has begun, a failure can no longer become a problem document:
// the error is logged and the connection is closed without the final
// chunk, so that the client sees a truncated transfer rather than a short
// but well-formed file.
//
// Both routes are data reads: every call is an audit event (route.action
// "measures.read" and "sensors.read") with the caller's user id, the
// experiment, the outcome and the request id.

// Query limits of the measures route.
const (
	// maxSensorParams bounds the sensor= parameters of one request.
	maxSensorParams = 100
	// csvFlushRows is how often a CSV stream is pushed to the client.
	csvFlushRows = 1000
	// csvStallTimeout ends a CSV stream whose client has not taken the
	// last csvFlushRows rows for this long: a stream reads from the
	// database while it writes, so a stalled client would otherwise hold
	// a pooled connection for as long as it keeps the socket open.
	csvStallTimeout = time.Minute
	// apiTimeLayout writes times in UTC with six fractional digits, as the
	// message contract does: equal times are equal strings.
	apiTimeLayout = "2006-01-02T15:04:05.000000Z07:00"
)

// The aggregates of a downsampled read, in the order they are written.
var allAggregates = []string{"avg", "min", "max", "count"}

func formatTime(t time.Time) string { return t.UTC().Format(apiTimeLayout) }

// measuresQuery is the parsed query of GET /v1/experiments/{id}/measures.
type measuresQuery struct {
	sensors  []string
	from, to time.Time
	after    storage.MeasureKey
	limit    int // 0: the default page (JSON) or no cap (CSV)
	every    time.Duration
	aggs     []string // with every: the aggregates to return, in allAggregates order
	csv      bool
}

func (q measuresQuery) selection(experimentID int64) storage.Selection {
	return storage.Selection{ExperimentID: experimentID, Sensors: q.sensors, From: q.from, To: q.to}
}

// Cursors of measures are opaque to clients: base64url of
// "m:<series id>:<microseconds>" (raw measures) or "b:<series id>:<bucket
// start in microseconds>" (buckets), the key of the last row of a page.
const (
	cursorMeasures = "m"
	cursorBuckets  = "b"
)

func encodeMeasureCursor(kind string, k storage.MeasureKey) string {
	return base64.RawURLEncoding.EncodeToString(
		[]byte(kind + ":" + strconv.FormatInt(k.SeriesID, 10) + ":" + strconv.FormatInt(k.Time.UnixMicro(), 10)))
}

// decodeMeasureCursor parses a cursor of the given kind; the error is the
// reason to give the client.
func decodeMeasureCursor(raw, kind string) (storage.MeasureKey, error) {
	errBad := errors.New("is not a cursor returned by this API")
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return storage.MeasureKey{}, errBad
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || (parts[0] != cursorMeasures && parts[0] != cursorBuckets) {
		return storage.MeasureKey{}, errBad
	}
	series, err1 := strconv.ParseInt(parts[1], 10, 64)
	us, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || series <= 0 || us < minCursorMicros || us >= maxCursorMicros {
		return storage.MeasureKey{}, errBad
	}
	if parts[0] != kind {
		if kind == cursorBuckets {
			return storage.MeasureKey{}, errors.New("is a cursor of raw measures; a read with every= needs one of its own pages")
		}
		return storage.MeasureKey{}, errors.New("is a cursor of a downsampled read; give the same every= or start again")
	}
	return storage.MeasureKey{SeriesID: series, Time: time.UnixMicro(us).UTC()}, nil
}

// The times a cursor may hold: the years the schema stores.
var (
	minCursorMicros = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxCursorMicros = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
)

// parseEvery reads a bucket width: a Go duration ("10s", "1m30s", "1h",
// "250ms") or a number of days ("1d", "7d").
func parseEvery(raw string) (time.Duration, bool) {
	d, err := time.ParseDuration(raw)
	if err != nil {
		days, ok := strings.CutSuffix(raw, "d")
		n, err := strconv.Atoi(days)
		if !ok || err != nil || n < 1 || n > 366 || strconv.Itoa(n) != days {
			return 0, false
		}
		d = time.Duration(n) * 24 * time.Hour
	}
	if d < storage.MinEvery || d > storage.MaxEvery || d%time.Microsecond != 0 {
		return 0, false
	}
	return d, true
}

// parseTimeParam reads an RFC 3339 time (fraction optional, any offset).
func parseTimeParam(raw string) (time.Time, bool) {
	// RFC 3339 allows a lower-case t and z, which time.Parse does not.
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(raw))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseMeasuresQuery validates every parameter of a measures read and
// names each bad one in the problem.
func parseMeasuresQuery(r *http.Request) (measuresQuery, error) {
	var (
		q measuresQuery
		v validation
	)
	values := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(values)) {
		switch name {
		case "sensor", "agg":
		case "from", "to", "cursor", "limit", "every":
			if len(values[name]) > 1 {
				v.add("query."+name, "must be given once")
			}
		default:
			v.add("query."+name, "unknown parameter (allowed: sensor, from, to, cursor, limit, every, agg)")
		}
	}

	if sensors := values["sensor"]; len(sensors) > maxSensorParams {
		v.add("query.sensor", fmt.Sprintf("at most %d sensors per request", maxSensorParams))
	} else {
		for _, s := range sensors {
			if s == "" || len(s) > storage.MaxSensorBytes || !utf8.ValidString(s) {
				v.add("query.sensor", fmt.Sprintf("must be a sensor name of 1 to %d bytes of UTF-8", storage.MaxSensorBytes))
				break
			}
		}
		q.sensors = sensors
	}

	var fromOK, toOK bool
	if raw := values.Get("from"); raw != "" {
		if q.from, fromOK = parseTimeParam(raw); !fromOK {
			v.add("query.from", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z or 2026-01-02T16:04:05.250+01:00")
		}
	}
	if raw := values.Get("to"); raw != "" {
		if q.to, toOK = parseTimeParam(raw); !toOK {
			v.add("query.to", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z or 2026-01-02T16:04:05.250+01:00")
		}
	}
	if fromOK && toOK && !q.from.Before(q.to) {
		v.add("query.to", "must be after from (the range is from <= time < to)")
	}

	if raw := values.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > storage.MaxReadLimit {
			v.add("query.limit", fmt.Sprintf("must be an integer from 1 to %d", storage.MaxReadLimit))
		}
		q.limit = n
	}

	if raw := values.Get("every"); raw != "" {
		d, ok := parseEvery(raw)
		if !ok {
			v.add("query.every", fmt.Sprintf("must be a duration from %s to %s such as 10s, 1m, 1h or 1d", storage.MinEvery, storage.MaxEvery))
		}
		q.every = d
	}

	if aggs := values["agg"]; len(aggs) > 0 {
		if values.Get("every") == "" {
			v.add("query.agg", "needs every= (the bucket width to aggregate over)")
		}
		chosen := map[string]bool{}
		for _, a := range aggs {
			for _, name := range strings.Split(a, ",") {
				if !slices.Contains(allAggregates, name) {
					v.add("query.agg", "must be one or more of avg, min, max, count (repeated or comma-separated)")
					break
				}
				chosen[name] = true
			}
		}
		for _, name := range allAggregates {
			if chosen[name] {
				q.aggs = append(q.aggs, name)
			}
		}
	} else {
		q.aggs = allAggregates
	}

	if raw := values.Get("cursor"); raw != "" {
		kind := cursorMeasures
		if q.every > 0 {
			kind = cursorBuckets
		}
		k, err := decodeMeasureCursor(raw, kind)
		if err != nil {
			v.add("query.cursor", err.Error())
		}
		q.after = k
	}

	if err := v.err(); err != nil {
		return measuresQuery{}, err
	}
	csv, err := acceptsCSV(r)
	if err != nil {
		return measuresQuery{}, err
	}
	q.csv = csv
	return q, nil
}

// acceptsCSV chooses the representation from the Accept header: CSV when
// text/csv is preferred to application/json (a more specific range wins
// over a wildcard; on a tie JSON wins), JSON otherwise, including without
// an Accept header. A header that accepts neither is 406.
func acceptsCSV(r *http.Request) (bool, error) {
	header := strings.Join(r.Header.Values("Accept"), ",")
	if strings.TrimSpace(header) == "" {
		return false, nil
	}
	type pref struct {
		q           float64
		specificity int // -1: no range matched
	}
	jsonPref, csvPref := pref{specificity: -1}, pref{specificity: -1}
	match := func(p *pref, mediaType, rangeType string, q float64) {
		typ, _, _ := strings.Cut(mediaType, "/")
		spec := -1
		switch rangeType {
		case mediaType:
			spec = 2
		case typ + "/*":
			spec = 1
		case "*/*":
			spec = 0
		}
		if spec > p.specificity {
			*p = pref{q: q, specificity: spec}
		}
	}
	for _, part := range strings.Split(header, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue // an unreadable range is ignored, as if absent
		}
		q := 1.0
		if raw, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(raw, 64); err != nil || math.IsNaN(q) || q < 0 || q > 1 {
				q = 0
			}
		}
		match(&jsonPref, "application/json", mt, q)
		match(&csvPref, "text/csv", mt, q)
	}
	jsonQ, csvQ := max(jsonPref.q, 0), max(csvPref.q, 0)
	if jsonQ <= 0 && csvQ <= 0 {
		p := newProblem(http.StatusNotAcceptable, "not-acceptable",
			"measures are served as application/json or text/csv; the Accept header allows neither")
		p.Title = "Not acceptable"
		return false, p
	}
	return csvQ > jsonQ, nil
}

// ---- JSON ----

// A JSON page groups its rows by sensor: "series" holds, in the read
// order, one group per run of rows of one sensor, the sensor named once.
// The rows of a page are runs already (the read order is by series), so a
// sensor has one group per page, and a page of one sensor has one group.

// apiMeasure is a measure on the wire, in the group of its sensor.
type apiMeasure struct {
	Time  string            `json:"time"`
	Value float64           `json:"value"`
	Unit  string            `json:"unit,omitempty"`
	Tags  map[string]string `json:"tags,omitempty"`
}

func measureToAPI(m storage.Measure) apiMeasure {
	return apiMeasure{Time: formatTime(m.Time), Value: m.Value, Unit: m.Unit, Tags: m.Tags}
}

// sensorMeasures is a run of measures of one sensor in a page.
type sensorMeasures struct {
	Sensor   string       `json:"sensor"`
	Measures []apiMeasure `json:"measures"`
}

// measurePage is GET /v1/experiments/{id}/measures as JSON.
type measurePage struct {
	Series     []sensorMeasures `json:"series"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// measurePageOf groups measures, in their order, into a page.
func measurePageOf(ms []storage.Measure, next string) measurePage {
	page := measurePage{Series: []sensorMeasures{}, NextCursor: next}
	for i, m := range ms {
		if i == 0 || m.Sensor != ms[i-1].Sensor {
			page.Series = append(page.Series, sensorMeasures{Sensor: m.Sensor})
		}
		g := &page.Series[len(page.Series)-1]
		g.Measures = append(g.Measures, measureToAPI(m))
	}
	return page
}

// apiBucket is a bucket on the wire, in the group of its sensor; only the
// aggregates asked for are set.
type apiBucket struct {
	Time  string   `json:"time"`
	Avg   *float64 `json:"avg,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	Count *int64   `json:"count,omitempty"`
}

func bucketToAPI(b storage.Bucket, aggs []string) apiBucket {
	out := apiBucket{Time: formatTime(b.Start)}
	for _, a := range aggs {
		switch a {
		case "avg":
			out.Avg = &b.Avg
		case "min":
			out.Min = &b.Min
		case "max":
			out.Max = &b.Max
		case "count":
			out.Count = &b.Count
		}
	}
	return out
}

// sensorBuckets is a run of buckets of one sensor in a page.
type sensorBuckets struct {
	Sensor  string      `json:"sensor"`
	Buckets []apiBucket `json:"buckets"`
}

// bucketPage is a downsampled GET /v1/experiments/{id}/measures as JSON.
type bucketPage struct {
	Every      string          `json:"every"`
	Series     []sensorBuckets `json:"series"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// bucketPageOf groups buckets, in their order, into a page.
func bucketPageOf(every time.Duration, bs []storage.Bucket, aggs []string, next string) bucketPage {
	page := bucketPage{Every: every.String(), Series: []sensorBuckets{}, NextCursor: next}
	for i, b := range bs {
		if i == 0 || b.Sensor != bs[i-1].Sensor {
			page.Series = append(page.Series, sensorBuckets{Sensor: b.Sensor})
		}
		g := &page.Series[len(page.Series)-1]
		g.Buckets = append(g.Buckets, bucketToAPI(b, aggs))
	}
	return page
}

func (s *Server) listMeasures(w http.ResponseWriter, r *http.Request) error {
	e, err := s.dataExperiment(r)
	if err != nil {
		return err
	}
	q, err := parseMeasuresQuery(r)
	if err != nil {
		return err
	}
	sel := q.selection(e.ID)
	switch {
	case q.every > 0 && q.csv:
		bq := storage.BucketQuery{Selection: sel, Every: q.every, After: q.after, Limit: q.limit}
		return s.streamCSV(w, r, append([]string{"sensor", "time"}, q.aggs...),
			rowsOf(s.store.StreamBuckets(r.Context(), bq), func(b storage.Bucket, rec []string) []string {
				return bucketRecord(b, q.aggs, rec)
			}))
	case q.csv:
		mq := storage.MeasureQuery{Selection: sel, After: q.after, Limit: q.limit}
		return s.streamMeasuresCSV(w, r, s.store.StreamMeasures(r.Context(), mq))
	case q.every > 0:
		page, err := s.store.ReadBuckets(r.Context(), storage.BucketQuery{Selection: sel, Every: q.every, After: q.after, Limit: q.limit})
		if err != nil {
			return err
		}
		next := ""
		if !page.Next.IsZero() {
			next = encodeMeasureCursor(cursorBuckets, page.Next)
		}
		writeJSON(w, http.StatusOK, bucketPageOf(q.every, page.Buckets, q.aggs, next))
		return nil
	default:
		mq := storage.MeasureQuery{Selection: sel, After: q.after, Limit: q.limit}
		return s.writeMeasurePage(w, r, func(fn func(storage.Measure) error) (storage.MeasureKey, error) {
			return s.store.EachMeasure(r.Context(), mq, fn)
		})
	}
}

// jsonChunk is how much of a JSON page is appended before it is written
// out: the page goes out through one buffer of about this size.
const jsonChunk = 64 << 10

// eachMeasure reads a page of measures as storage.Store.EachMeasure does.
type eachMeasure func(fn func(storage.Measure) error) (next storage.MeasureKey, err error)

// writeMeasurePage writes the page each reads as writeJSON writes
// measurePageOf of its measures, byte for byte, while its rows arrive: each
// measure is appended to one reused buffer, written out every jsonChunk
// bytes, so the page is never held and its first bytes travel while the
// database still sends the rest. An error before the first write is
// returned as usual (a problem document); after it, the connection is
// aborted (abortStream), so a client never takes a cut page for a whole
// one. A value JSON cannot carry (NaN, ±Inf; the database stores none) is
// such an error.
func (s *Server) writeMeasurePage(w http.ResponseWriter, r *http.Request, each eachMeasure) error {
	rc := http.NewResponseController(w)
	// The stall deadline of the CSV streams.
	_ = rc.SetWriteDeadline(time.Now().Add(csvStallTimeout))
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	buf := make([]byte, 0, jsonChunk+4<<10)
	buf = append(buf, `{"series":[`...)
	started, rows := false, 0
	var (
		sensor string // of the open group
		times  measure.TimeWriter
	)
	send := func() error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("%w: %w", errClientGone, err)
		}
		buf = buf[:0]
		return nil
	}
	next, err := each(func(m storage.Measure) error {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return fmt.Errorf("measure of sensor %q at %s holds %v, which JSON cannot carry",
				m.Sensor, formatTime(m.Time), m.Value)
		}
		switch {
		case rows == 0:
			buf, sensor = appendSensorGroupJSON(buf, m.Sensor), m.Sensor
		case m.Sensor != sensor:
			buf, sensor = appendSensorGroupJSON(append(buf, "]},"...), m.Sensor), m.Sensor
		default:
			buf = append(buf, ',')
		}
		buf = appendMeasureJSON(buf, m, &times)
		rows++
		if len(buf) >= jsonChunk {
			return send()
		}
		return nil
	})
	switch {
	case err == nil:
	case !started:
		return err
	case errors.Is(err, errClientGone):
		return err
	default:
		return s.abortStream(w, r, rows, err)
	}
	if rows > 0 {
		buf = append(buf, "]}"...)
	}
	buf = append(buf, ']')
	if !next.IsZero() {
		buf = append(buf, `,"next_cursor":`...)
		buf = appendJSONString(buf, encodeMeasureCursor(cursorMeasures, next))
	}
	buf = append(buf, "}\n"...)
	return send()
}

// appendSensorGroupJSON opens the group of a sensor's measures:
// {"sensor":"…","measures":[
func appendSensorGroupJSON(b []byte, sensor string) []byte {
	b = append(b, `{"sensor":`...)
	b = appendJSONString(b, sensor)
	return append(b, `,"measures":[`...)
}

// appendMeasureJSON appends m, its time through tw, as encoding/json
// writes measureToAPI(m).
func appendMeasureJSON(b []byte, m storage.Measure, tw *measure.TimeWriter) []byte {
	b = append(b, `{"time":"`...)
	b = tw.Append(b, m.Time)
	b = append(b, `","value":`...)
	b = measure.AppendFloat(b, m.Value)
	if m.Unit != "" {
		b = append(b, `,"unit":`...)
		b = appendJSONString(b, m.Unit)
	}
	if len(m.Tags) > 0 {
		tags, _ := json.Marshal(m.Tags) // a map of strings always encodes; keys sorted
		b = append(b, `,"tags":`...)
		b = append(b, tags...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string as encoding/json does: in
// place when every byte is printable ASCII that needs no escape (the usual
// sensor name or unit), through json.Marshal otherwise (control bytes,
// quotes, backslashes, the HTML-escaped <, > and &, non-ASCII text).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ---- CSV ----

// rowsOf turns a sequence of rows into a sequence of CSV records; the
// record slice is reused from row to row.
func rowsOf[T any](seq iter.Seq2[T, error], record func(T, []string) []string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		var rec []string
		for v, err := range seq {
			if err != nil {
				yield(nil, err)
				return
			}
			rec = record(v, rec[:0])
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// formatValue writes a float64 as encoding/json does: plain decimals for
// ordinary magnitudes, an exponent for very large or small ones; the
// shortest form that reads back as the same number.
func formatValue(v float64) string {
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(v, 'e', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func measureRecord(m storage.Measure, rec []string) []string {
	tags := ""
	if len(m.Tags) > 0 {
		b, _ := json.Marshal(m.Tags) // a map of strings always encodes; keys sorted
		tags = string(b)
	}
	return append(rec, m.Sensor, formatTime(m.Time), formatValue(m.Value), m.Unit, tags)
}

func bucketRecord(b storage.Bucket, aggs []string, rec []string) []string {
	rec = append(rec, b.Sensor, formatTime(b.Start))
	for _, a := range aggs {
		switch a {
		case "avg":
			rec = append(rec, formatValue(b.Avg))
		case "min":
			rec = append(rec, formatValue(b.Min))
		case "max":
			rec = append(rec, formatValue(b.Max))
		case "count":
			rec = append(rec, strconv.FormatInt(b.Count, 10))
		}
	}
	return rec
}

// streamCSV writes the header line and the records as they come, flushing
// every csvFlushRows rows. An error before the first record is returned as
// usual (a problem document); after it, the response cannot change any
// more, so the error is logged here and the connection aborted.
func (s *Server) streamCSV(w http.ResponseWriter, r *http.Request, header []string, records iter.Seq2[[]string, error]) error {
	rc := http.NewResponseController(w)
	// The server has no write timeout (streams are long); this one is moved
	// forward at every flush, and cleared for the next request of the
	// connection. Writers that cannot take deadlines go without.
	_ = rc.SetWriteDeadline(time.Now().Add(csvStallTimeout))
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	cw := csv.NewWriter(w)
	started := false
	begin := func() {
		started = true
		w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_ = cw.Write(header) // errors stick in cw and show at the next Flush
	}
	rows := 0
	for rec, err := range records {
		if err != nil {
			if !started {
				return err
			}
			return s.abortStream(w, r, rows, err)
		}
		if !started {
			begin()
		}
		_ = cw.Write(rec)
		if rows++; rows%csvFlushRows == 0 {
			if err := flushCSV(cw, rc); err != nil {
				return fmt.Errorf("%w: %w", errClientGone, err)
			}
			_ = rc.SetWriteDeadline(time.Now().Add(csvStallTimeout))
		}
	}
	if !started {
		begin() // no rows: the header line alone
	}
	if err := flushCSV(cw, rc); err != nil {
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	return nil
}

// streamMeasuresCSV is streamCSV for raw measures, written without a
// csv.Writer: each line is appended to one reused buffer (times, values
// and fields formatted in place, quoted by the rules of encoding/csv), so a
// row costs no allocation. The buffer goes out every csvFlushRows rows.
func (s *Server) streamMeasuresCSV(w http.ResponseWriter, r *http.Request, measures iter.Seq2[storage.Measure, error]) error {
	rc := http.NewResponseController(w)
	// The stall deadline of streamCSV, moved forward at every flush.
	_ = rc.SetWriteDeadline(time.Now().Add(csvStallTimeout))
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	buf := make([]byte, 0, 64<<10)
	var times measure.TimeWriter
	started := false
	begin := func() {
		started = true
		w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		buf = append(buf, "sensor,time,value,unit,tags\n"...)
	}
	send := func() error {
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("%w: %w", errClientGone, err)
		}
		buf = buf[:0]
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("%w: %w", errClientGone, err)
		}
		return nil
	}
	rows := 0
	for m, err := range measures {
		if err != nil {
			if !started {
				return err
			}
			return s.abortStream(w, r, rows, err)
		}
		if !started {
			begin()
		}
		buf = appendMeasureCSV(buf, m, &times)
		if rows++; rows%csvFlushRows == 0 {
			if err := send(); err != nil {
				return err
			}
			_ = rc.SetWriteDeadline(time.Now().Add(csvStallTimeout))
		}
	}
	if !started {
		begin() // no rows: the header line alone
	}
	return send()
}

// appendMeasureCSV appends m as one CSV line, as measureRecord through a
// csv.Writer would write it, its time through tw.
func appendMeasureCSV(b []byte, m storage.Measure, tw *measure.TimeWriter) []byte {
	b = appendCSVField(b, m.Sensor)
	b = append(b, ',')
	b = tw.Append(b, m.Time)
	b = append(b, ',')
	if a := math.Abs(m.Value); a != 0 && (a < 1e-6 || a >= 1e21) {
		b = strconv.AppendFloat(b, m.Value, 'e', -1, 64)
	} else {
		b = measure.AppendDecimal(b, m.Value)
	}
	b = append(b, ',')
	b = appendCSVField(b, m.Unit)
	b = append(b, ',')
	if len(m.Tags) > 0 {
		tags, _ := json.Marshal(m.Tags) // a map of strings always encodes; keys sorted
		b = appendCSVField(b, string(tags))
	}
	return append(b, '\n')
}

// appendCSVField appends a field quoted when encoding/csv would quote it.
func appendCSVField(b []byte, field string) []byte {
	if !csvNeedsQuotes(field) {
		return append(b, field...)
	}
	b = append(b, '"')
	for i := 0; i < len(field); i++ {
		if field[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, field[i])
	}
	return append(b, '"')
}

// csvNeedsQuotes is encoding/csv's fieldNeedsQuotes for the comma ','.
func csvNeedsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` || strings.ContainsAny(field, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}

func flushCSV(cw *csv.Writer, rc *http.ResponseController) error {
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return rc.Flush()
}

// abortStream ends a streamed response (CSV, or a JSON page) that failed
// half way: it logs the cause (the one place it is handled) and closes the
// connection without the terminating chunk, so the client cannot take the
// partial body for a whole one. The returned error marks the request failed for the audit
// event and keeps the error mapper from writing into the body.
func (s *Server) abortStream(w http.ResponseWriter, r *http.Request, rows int, cause error) error {
	info := infoOf(r.Context())
	if r.Context().Err() == nil {
		s.log.Error("measures stream failed after the response began; connection aborted", zap.Error(cause),
			zap.String("http.request.id", info.id), zap.String("http.route", info.route), zap.Int("mymonit.rows_sent", rows))
	}
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
	return fmt.Errorf("%w: stream aborted after %d rows: %w", errClientGone, rows, cause)
}

// ---- sensors ----

// apiSensor is a sensor of an experiment on the wire.
type apiSensor struct {
	Sensor string `json:"sensor"`
	Count  int64  `json:"count"`
	First  string `json:"first,omitempty"`
	Last   string `json:"last,omitempty"`
}

// sensorList is GET /v1/experiments/{id}/sensors.
type sensorList struct {
	Sensors []apiSensor `json:"sensors"`
}

func (s *Server) listSensors(w http.ResponseWriter, r *http.Request) error {
	e, err := s.dataExperiment(r)
	if err != nil {
		return err
	}
	if err := onlyQuery(r); err != nil {
		return err
	}
	stats, err := s.store.ListSensors(r.Context(), e.ID)
	if err != nil {
		return err
	}
	out := sensorList{Sensors: make([]apiSensor, len(stats))}
	for i, st := range stats {
		out.Sensors[i] = apiSensor{Sensor: st.Sensor, Count: st.Count}
		if st.Count > 0 {
			out.Sensors[i].First, out.Sensors[i].Last = formatTime(st.First), formatTime(st.Last)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
