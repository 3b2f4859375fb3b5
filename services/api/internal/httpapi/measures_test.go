package httpapi_test

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/services/api/internal/httpapi"
)

// wireMeasure is a measure as the API returns it.
type wireMeasure struct {
	Sensor string            `json:"sensor"`
	Time   string            `json:"time"`
	Value  float64           `json:"value"`
	Unit   string            `json:"unit,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// readPage is a JSON page of measures, its groups flattened: each measure
// carries the sensor of its group.
type readPage struct {
	Measures   []wireMeasure
	NextCursor string
}

// UnmarshalJSON reads a page and checks its grouping: one group per run of
// a sensor, none empty.
func (p *readPage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Series []struct {
			Sensor   string        `json:"sensor"`
			Measures []wireMeasure `json:"measures"`
		} `json:"series"`
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Measures, p.NextCursor = []wireMeasure{}, raw.NextCursor
	for i, g := range raw.Series {
		if len(g.Measures) == 0 || (i > 0 && g.Sensor == raw.Series[i-1].Sensor) {
			return fmt.Errorf("group %d of sensor %q: %d measures, after a group of %q", i, g.Sensor, len(g.Measures), raw.Series[max(i-1, 0)].Sensor)
		}
		for _, m := range g.Measures {
			if m.Sensor != "" {
				return fmt.Errorf("measure %+v of group %q names its sensor", m, g.Sensor)
			}
			m.Sensor = g.Sensor
			p.Measures = append(p.Measures, m)
		}
	}
	return nil
}

type wireBucket struct {
	Sensor string   `json:"sensor"`
	Time   string   `json:"time"`
	Avg    *float64 `json:"avg"`
	Min    *float64 `json:"min"`
	Max    *float64 `json:"max"`
	Count  *int64   `json:"count"`
}

// bucketsPage is a JSON page of buckets, its groups flattened as readPage's.
type bucketsPage struct {
	Every      string
	Buckets    []wireBucket
	NextCursor string
}

// UnmarshalJSON reads a page and checks its grouping as readPage's.
func (p *bucketsPage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Every  string `json:"every"`
		Series []struct {
			Sensor  string       `json:"sensor"`
			Buckets []wireBucket `json:"buckets"`
		} `json:"series"`
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Every, p.Buckets, p.NextCursor = raw.Every, []wireBucket{}, raw.NextCursor
	for i, g := range raw.Series {
		if len(g.Buckets) == 0 || (i > 0 && g.Sensor == raw.Series[i-1].Sensor) {
			return fmt.Errorf("group %d of sensor %q: %d buckets, after a group of %q", i, g.Sensor, len(g.Buckets), raw.Series[max(i-1, 0)].Sensor)
		}
		for _, bk := range g.Buckets {
			if bk.Sensor != "" {
				return fmt.Errorf("bucket %+v of group %q names its sensor", bk, g.Sensor)
			}
			bk.Sensor = g.Sensor
			p.Buckets = append(p.Buckets, bk)
		}
	}
	return nil
}

// get sends a GET with extra headers and validates the answer against the
// spec.
func (e *env) get(t testing.TB, path, token string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), "GET", e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, body: b}
	e.validate(t, req, out)
	return out
}

var csvAccept = map[string]string{"Accept": "text/csv"}

// parseCSV reads a CSV body strictly (RFC 4180, same field count per line).
func parseCSV(t testing.TB, body []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, body)
	}
	return recs
}

// readFixture stores measures of experiment "exp" (a member scientist
// reads it) and of "other", directly through the store.
type readFixture struct {
	e              *env
	admin, sci     account
	auditor, other account // other: a scientist who is no member
	// want are the measures of exp in the API's order.
	want []wireMeasure
}

var mt0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func newMeasuresFixture(t *testing.T) readFixture {
	t.Helper()
	e := newEnv(t)
	ctx := testCtx(t)
	f := readFixture{e: e, admin: e.signUp(storage.RoleAdmin), sci: e.signUp(storage.RoleScientist),
		auditor: e.signUp(storage.RoleAuditor), other: e.signUp(storage.RoleScientist)}
	exp, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: "exp", Name: "Exp"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddMembership(ctx, exp.ID, f.sci.user.ID); err != nil {
		t.Fatal(err)
	}
	// Sensor names that need CSV quoting; the series are created in this
	// order, which is the order of the API.
	sensors := []string{"hv/module-12,current", `temp "inner"`, "τ"}
	keys := []storage.SeriesKey{{ExperimentID: other.ID, Sensor: "hidden"}}
	for _, s := range sensors {
		keys = append(keys, storage.SeriesKey{ExperimentID: exp.ID, Sensor: s})
	}
	ids, err := e.store.EnsureSeries(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	var rows []storage.Row
	for k, s := range sensors {
		for i := range 10 {
			m := wireMeasure{Sensor: s, Time: mt0.Add(time.Duration(i)*20*time.Second + time.Duration(k)*time.Microsecond).Format("2006-01-02T15:04:05.000000Z"),
				Value: float64(i)*1.25 - float64(k)*1e-7}
			if i%2 == 0 {
				m.Unit = "µA"
			}
			if i%4 == 0 {
				m.Tags = map[string]string{"rack": "r,3", "note": `say "hi"`}
			}
			f.want = append(f.want, m)
			ts, _ := time.Parse(time.RFC3339Nano, m.Time)
			rows = append(rows, storage.Row{SeriesID: ids[storage.SeriesKey{ExperimentID: exp.ID, Sensor: s}], Time: ts, Value: m.Value, Unit: m.Unit, Tags: m.Tags})
		}
	}
	rows = append(rows, storage.Row{SeriesID: ids[keys[0]], Time: mt0, Value: 666})
	if err := e.store.UpsertMeasures(ctx, rows); err != nil {
		t.Fatal(err)
	}
	return f
}

// pages follows next_cursor from path and returns every measure.
func (f readFixture) pages(t *testing.T, path string) (all []wireMeasure, pages int) {
	t.Helper()
	all = []wireMeasure{}
	cursor := ""
	for {
		r := f.e.get(t, path+cursor, f.sci.token, nil)
		wantStatus(t, "page", r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var p readPage
		r.decode(t, &p)
		all = append(all, p.Measures...)
		pages++
		if p.NextCursor == "" {
			return all, pages
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		cursor = sep + "cursor=" + url.QueryEscape(p.NextCursor)
		if pages > 100 {
			t.Fatal("too many pages")
		}
	}
}

func TestMeasuresJSON(t *testing.T) {
	f := newMeasuresFixture(t)
	filter := func(keep func(wireMeasure) bool) []wireMeasure {
		out := []wireMeasure{}
		for _, m := range f.want {
			if keep(m) {
				out = append(out, m)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []wireMeasure
		pages int
	}{
		{"everything", "", f.want, 1},
		{"pages of 4", "?limit=4", f.want, 8},
		{"pages of 10, exactly", "?limit=10", f.want, 3},
		{"one sensor", "?sensor=" + url.QueryEscape(`temp "inner"`), filter(func(m wireMeasure) bool { return m.Sensor == `temp "inner"` }), 1},
		{"two sensors, pages of 3", "?sensor=%CF%84&sensor=" + url.QueryEscape("hv/module-12,current") + "&limit=3",
			filter(func(m wireMeasure) bool { return m.Sensor != `temp "inner"` }), 7},
		{"sensor of another experiment", "?sensor=hidden", []wireMeasure{}, 1},
		{"from and to, with offsets", "?from=" + url.QueryEscape("2026-05-04T11:01:00+01:00") + "&to=" + url.QueryEscape("2026-05-04T10:02:00.000001Z"),
			filter(func(m wireMeasure) bool {
				return m.Time >= "2026-05-04T10:01:00" && m.Time < "2026-05-04T10:02:00.000001"
			}), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := f.pages(t, "/v1/experiments/exp/measures"+tt.query)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("measures (-want +got):\n%s", diff)
			}
			if pages != tt.pages {
				t.Errorf("%d pages, want %d", pages, tt.pages)
			}
		})
	}
	t.Run("as admin and auditor", func(t *testing.T) {
		// An auditor reads the data of the experiments it is a member of.
		wantStatus(t, "auditor, not a member", f.e.get(t, "/v1/experiments/exp/measures?limit=1", f.auditor.token, nil), http.StatusForbidden)
		x, err := f.e.store.ExperimentBySlug(testCtx(t), "exp")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.e.store.AddMembership(testCtx(t), x.ID, f.auditor.user.ID); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.e.store.RemoveMembership(testCtx(t), x.ID, f.auditor.user.ID) })
		for _, a := range []account{f.admin, f.auditor} {
			r := f.e.get(t, "/v1/experiments/exp/measures?limit=1", a.token, nil)
			wantStatus(t, string(a.user.Role), r, http.StatusOK)
			var p readPage
			r.decode(t, &p)
			if diff := cmp.Diff(f.want[:1], p.Measures); diff != "" || p.NextCursor == "" {
				t.Errorf("%s: (-want +got):\n%s (cursor %q)", a.user.Role, diff, p.NextCursor)
			}
		}
	})
	t.Run("no member", func(t *testing.T) {
		r := f.e.get(t, "/v1/experiments/exp/measures", f.other.token, nil)
		wantStatus(t, "not a member", r, http.StatusNotFound)
		if strings.Contains(string(r.body), "hv/module") {
			t.Errorf("a 404 leaks data: %s", r.body)
		}
	})
}

func TestMeasuresDownsampled(t *testing.T) {
	f := newMeasuresFixture(t)
	// Sensor "τ" (k=2) has values i*1.25 - 2e-7 at 10:00:00 + i*20s: three
	// per minute, minute 3 holds only i=9.
	v := func(i int) float64 { return float64(i)*1.25 - 2e-7 }
	ptr := func(x float64) *float64 { return &x }
	cnt := func(n int64) *int64 { return &n }
	want := []wireBucket{
		{Sensor: "τ", Time: "2026-05-04T10:00:00.000000Z", Avg: ptr((v(0) + v(1) + v(2)) / 3), Min: ptr(v(0)), Max: ptr(v(2)), Count: cnt(3)},
		{Sensor: "τ", Time: "2026-05-04T10:01:00.000000Z", Avg: ptr((v(3) + v(4) + v(5)) / 3), Min: ptr(v(3)), Max: ptr(v(5)), Count: cnt(3)},
		{Sensor: "τ", Time: "2026-05-04T10:02:00.000000Z", Avg: ptr((v(6) + v(7) + v(8)) / 3), Min: ptr(v(6)), Max: ptr(v(8)), Count: cnt(3)},
		{Sensor: "τ", Time: "2026-05-04T10:03:00.000000Z", Avg: ptr(v(9)), Min: ptr(v(9)), Max: ptr(v(9)), Count: cnt(1)},
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(math.Abs(a), math.Abs(b)) })

	var got []wireBucket
	cursor := ""
	for pages := 1; ; pages++ {
		r := f.e.get(t, "/v1/experiments/exp/measures?sensor=%CF%84&every=1m&limit=3"+cursor, f.sci.token, nil)
		wantStatus(t, "buckets", r, http.StatusOK)
		var p bucketsPage
		r.decode(t, &p)
		if p.Every != "1m0s" {
			t.Errorf("every = %q", p.Every)
		}
		got = append(got, p.Buckets...)
		if p.NextCursor == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 2", pages)
			}
			break
		}
		cursor = "&cursor=" + url.QueryEscape(p.NextCursor)
	}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}

	// Chosen aggregates only, and the raw cursor is refused here.
	r := f.e.get(t, "/v1/experiments/exp/measures?every=1d&agg=count&agg=max,min", f.sci.token, nil)
	wantStatus(t, "aggregates", r, http.StatusOK)
	var p bucketsPage
	r.decode(t, &p)
	if len(p.Buckets) != 3 {
		t.Fatalf("%d daily buckets, want one per sensor: %s", len(p.Buckets), r.body)
	}
	for _, b := range p.Buckets {
		if b.Avg != nil || b.Min == nil || b.Max == nil || b.Count == nil || *b.Count != 10 || b.Time != "2026-05-04T00:00:00.000000Z" {
			t.Errorf("bucket %+v: want min, max and count 10 of the day", b)
		}
	}
	if !strings.Contains(string(r.body), `"min":-2e-7`) && !strings.Contains(string(r.body), `"min":-2e-07`) {
		t.Errorf("min of τ not written exactly: %s", r.body)
	}

	// CSV of buckets.
	r = f.e.get(t, "/v1/experiments/exp/measures?sensor=%CF%84&every=1m&agg=count,avg", f.sci.token, csvAccept)
	wantStatus(t, "buckets as CSV", r, http.StatusOK)
	recs := parseCSV(t, r.body)
	// The database sums in time order and divides, as this does.
	wantRecs := [][]string{{"sensor", "time", "avg", "count"}}
	for _, b := range want {
		wantRecs = append(wantRecs, []string{b.Sensor, b.Time, strconv.FormatFloat(*b.Avg, 'f', -1, 64), fmt.Sprint(*b.Count)})
	}
	if diff := cmp.Diff(wantRecs, recs); diff != "" {
		t.Errorf("CSV buckets (-want +got):\n%s", diff)
	}
}

func TestMeasuresCSV(t *testing.T) {
	f := newMeasuresFixture(t)
	r := f.e.get(t, "/v1/experiments/exp/measures", f.sci.token, csvAccept)
	wantStatus(t, "CSV", r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	want := [][]string{{"sensor", "time", "value", "unit", "tags"}}
	for _, m := range f.want {
		tags := ""
		if m.Tags != nil {
			b, _ := json.Marshal(m.Tags)
			tags = string(b)
		}
		want = append(want, []string{m.Sensor, m.Time, fmt.Sprint(m.Value), m.Unit, tags})
	}
	recs := parseCSV(t, r.body)
	if diff := cmp.Diff(want, recs); diff != "" {
		t.Errorf("CSV (-want +got):\n%s", diff)
	}
	// Quoting as RFC 4180 writes it: the comma and the quotes.
	for _, line := range []string{`"hv/module-12,current",2026-05-04T10:00:00.000000Z,0,µA,"{""note"":""say \""hi\"""",""rack"":""r,3""}"`,
		`"temp ""inner""",2026-05-04T10:00:20.000001Z,1.2499999,,`} {
		if !strings.Contains(string(r.body), line+"\n") {
			t.Errorf("CSV lacks the line %s\n%s", line, r.body)
		}
	}
	// Values read back exactly.
	for i, rec := range recs[1:] {
		var v float64
		if _, err := fmt.Sscan(rec[2], &v); err != nil || v != f.want[i].Value {
			t.Errorf("row %d: value %q reads back as %v, want %v", i, rec[2], v, f.want[i].Value)
		}
	}

	r = f.e.get(t, "/v1/experiments/exp/measures?sensor=nothing", f.sci.token, csvAccept)
	wantStatus(t, "empty CSV", r, http.StatusOK)
	if string(r.body) != "sensor,time,value,unit,tags\n" {
		t.Errorf("empty CSV = %q, want the header line", r.body)
	}
	r = f.e.get(t, "/v1/experiments/exp/measures?limit=5&cursor="+url.QueryEscape(f.cursorAfter(t, 3)), f.sci.token, csvAccept)
	wantStatus(t, "CSV after a cursor, capped", r, http.StatusOK)
	if recs := parseCSV(t, r.body); len(recs) != 6 || recs[1][1] != f.want[3].Time || recs[5][1] != f.want[7].Time {
		t.Errorf("CSV after the 3rd row, 5 rows: %v", recs)
	}
}

// cursorAfter is the next_cursor of a JSON page of n rows.
func (f readFixture) cursorAfter(t *testing.T, n int) string {
	t.Helper()
	r := f.e.get(t, fmt.Sprintf("/v1/experiments/exp/measures?limit=%d", n), f.sci.token, nil)
	wantStatus(t, "page", r, http.StatusOK)
	var p readPage
	r.decode(t, &p)
	return p.NextCursor
}

func TestMeasuresContentNegotiation(t *testing.T) {
	f := newMeasuresFixture(t)
	tests := []struct {
		accept string
		want   string // json, csv, or 406
	}{
		{"", "json"},
		{"application/json", "json"},
		{"*/*", "json"},
		{"text/csv", "csv"},
		{"text/*", "csv"},
		{"text/csv;q=0.5, application/json", "json"},
		{"application/json;q=0.1, text/csv", "csv"},
		{"text/csv, application/json", "json"},
		{"application/*;q=0.2, text/csv;q=0.3", "csv"},
		{"text/html, */*;q=0.1", "json"},
		{"text/csv;q=0, */*", "json"},
		{"application/xml", "406"},
		{"text/csv;q=0, application/json;q=0", "406"},
		{"garbage;;;", "406"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			r := f.e.get(t, "/v1/experiments/exp/measures?limit=1", f.sci.token, map[string]string{"Accept": tt.accept})
			ct := r.header.Get("Content-Type")
			switch tt.want {
			case "json":
				if r.status != 200 || ct != "application/json" {
					t.Errorf("%d %s, want JSON", r.status, ct)
				}
			case "csv":
				if r.status != 200 || !strings.HasPrefix(ct, "text/csv") {
					t.Errorf("%d %s, want CSV", r.status, ct)
				}
			default:
				if r.status != http.StatusNotAcceptable || ct != "application/problem+json" {
					t.Errorf("%d %s, want a 406 problem", r.status, ct)
				}
			}
		})
	}
}

func TestMeasuresValidation(t *testing.T) {
	f := newMeasuresFixture(t)
	rawCursor := f.cursorAfter(t, 2)
	r := f.e.get(t, "/v1/experiments/exp/measures?every=1m&limit=1", f.sci.token, nil)
	var bp bucketsPage
	r.decode(t, &bp)
	long := strings.Repeat("s", storage.MaxSensorBytes+1)
	tooMany := strings.Repeat("sensor=a&", 101)
	tests := []struct {
		name, query, param string
	}{
		{"bad from", "from=yesterday", "query.from"},
		{"from without zone", "from=2026-01-02T03:04:05", "query.from"},
		{"bad to", "to=2026-13-01T00:00:00Z", "query.to"},
		{"to before from", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "query.to"},
		{"to equal from", "from=2026-01-02T00:00:00Z&to=2026-01-02T01:00:00%2B01:00", "query.to"},
		{"two froms", "from=2026-01-02T00:00:00Z&from=2026-01-03T00:00:00Z", "query.from"},
		{"limit 0", "limit=0", "query.limit"},
		{"limit too large", "limit=10001", "query.limit"},
		{"limit not a number", "limit=ten", "query.limit"},
		{"garbage cursor", "cursor=%25%25", "query.cursor"},
		{"cursor of users", "cursor=dTox", "query.cursor"},
		{"cursor with a zero series", "cursor=bTowOjA", "query.cursor"},
		{"raw cursor with every", "every=1m&cursor=" + url.QueryEscape(rawCursor), "query.cursor"},
		{"bucket cursor without every", "cursor=" + url.QueryEscape(bp.NextCursor), "query.cursor"},
		{"bad every", "every=soon", "query.every"},
		{"every too small", "every=1us", "query.every"},
		{"every too large", "every=400d", "query.every"},
		{"every negative", "every=-1m", "query.every"},
		{"agg without every", "agg=avg", "query.agg"},
		{"bad agg", "every=1m&agg=median", "query.agg"},
		{"empty agg", "every=1m&agg=avg,", "query.agg"},
		{"empty sensor", "sensor=", "query.sensor"},
		{"long sensor", "sensor=" + long, "query.sensor"},
		{"non-UTF-8 sensor", "sensor=%FF", "query.sensor"},
		{"too many sensors", tooMany, "query.sensor"},
		{"unknown parameter", "format=csv", "query.format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, header := range []map[string]string{nil, csvAccept} {
				r := f.e.get(t, "/v1/experiments/exp/measures?"+tt.query, f.sci.token, header)
				if r.status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", r.status, r.body)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				p := r.problem(t)
				var names []string
				for _, ip := range p.InvalidParams {
					names = append(names, ip.Name)
				}
				if !slices.Contains(names, tt.param) || !strings.Contains(p.Detail, tt.param) || p.Type != httpapi.ProblemBase+httpapi.TypeValidation {
					t.Errorf("problem %+v does not name %s", p, tt.param)
				}
			}
		})
	}
	// Several bad parameters are all named.
	r = f.e.get(t, "/v1/experiments/exp/measures?from=x&limit=0&every=y", f.sci.token, nil)
	var names []string
	for _, ip := range r.problem(t).InvalidParams {
		names = append(names, ip.Name)
	}
	if diff := cmp.Diff([]string{"query.every", "query.from", "query.limit"}, slices.Sorted(slices.Values(names))); diff != "" {
		t.Errorf("invalid_params (-want +got):\n%s", diff)
	}
	// Good spellings.
	for _, q := range []string{"every=250ms", "every=1h30m", "every=7d", "every=1m&agg=avg&agg=count,min",
		"from=2026-05-04T10:00:00.5Z", "from=2026-05-04t10:00:00z", "sensor=a&sensor=a", "limit=10000", "from=&limit="} {
		if r := f.e.get(t, "/v1/experiments/exp/measures?"+q, f.sci.token, nil); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
}

func TestSensors(t *testing.T) {
	f := newMeasuresFixture(t)
	if _, err := f.e.store.EnsureSeries(testCtx(t), []storage.SeriesKey{{ExperimentID: experimentID(t, f.e, "exp"), Sensor: "idle"}}); err != nil {
		t.Fatal(err)
	}
	r := f.e.get(t, "/v1/experiments/exp/sensors", f.sci.token, nil)
	wantStatus(t, "sensors", r, http.StatusOK)
	type sensor struct {
		Sensor string `json:"sensor"`
		Count  int64  `json:"count"`
		First  string `json:"first"`
		Last   string `json:"last"`
	}
	var got struct{ Sensors []sensor }
	r.decode(t, &got)
	want := []sensor{
		{"hv/module-12,current", 10, "2026-05-04T10:00:00.000000Z", "2026-05-04T10:03:00.000000Z"},
		{"idle", 0, "", ""},
		{`temp "inner"`, 10, "2026-05-04T10:00:00.000001Z", "2026-05-04T10:03:00.000001Z"},
		{"τ", 10, "2026-05-04T10:00:00.000002Z", "2026-05-04T10:03:00.000002Z"},
	}
	if diff := cmp.Diff(want, got.Sensors); diff != "" {
		t.Errorf("sensors (-want +got):\n%s", diff)
	}
	wantStatus(t, "sensors of a foreign experiment", f.e.get(t, "/v1/experiments/other/sensors", f.sci.token, nil), http.StatusNotFound)
	wantStatus(t, "unknown parameter", f.e.get(t, "/v1/experiments/exp/sensors?x=1", f.sci.token, nil), http.StatusBadRequest)
}

func experimentID(t *testing.T, e *env, slug string) int64 {
	t.Helper()
	x, err := e.store.ExperimentBySlug(testCtx(t), slug)
	if err != nil {
		t.Fatal(err)
	}
	return x.ID
}

// auditEvents returns the audit events of an action in the logs.
func auditEvents(t *testing.T, e *env, action string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(line, `"event.action":"`+action+`"`) {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line %s: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestMeasuresReadsAreAudited(t *testing.T) {
	f := newMeasuresFixture(t)
	ok := f.e.get(t, "/v1/experiments/exp/measures", f.sci.token, map[string]string{"X-Request-ID": "read-1"})
	wantStatus(t, "read", ok, http.StatusOK)
	wantStatus(t, "CSV read", f.e.get(t, "/v1/experiments/exp/measures", f.sci.token,
		map[string]string{"Accept": "text/csv", "X-Request-ID": "read-2"}), http.StatusOK)
	wantStatus(t, "foreign read", f.e.get(t, "/v1/experiments/exp/measures", f.other.token,
		map[string]string{"X-Request-ID": "read-3"}), http.StatusNotFound)
	wantStatus(t, "bad read", f.e.get(t, "/v1/experiments/exp/measures?limit=0", f.sci.token,
		map[string]string{"X-Request-ID": "read-4"}), http.StatusBadRequest)
	wantStatus(t, "sensors", f.e.get(t, "/v1/experiments/exp/sensors", f.admin.token,
		map[string]string{"X-Request-ID": "read-5"}), http.StatusOK)
	wantStatus(t, "sensors, auditor not a member", f.e.get(t, "/v1/experiments/exp/sensors", f.auditor.token,
		map[string]string{"X-Request-ID": "read-6"}), http.StatusForbidden)
	wantStatus(t, "no token", f.e.get(t, "/v1/experiments/exp/measures", "", nil), http.StatusUnauthorized)

	byID := map[string]map[string]any{}
	for _, action := range []string{"measures.read", "sensors.read"} {
		for _, ev := range auditEvents(t, f.e, action) {
			id, _ := ev["http.request.id"].(string)
			byID[id] = ev
		}
	}
	want := map[string]map[string]any{
		"read-1": {"event.action": "measures.read", "event.outcome": "success", "user.id": fmt.Sprint(f.sci.user.ID)},
		"read-2": {"event.action": "measures.read", "event.outcome": "success", "user.id": fmt.Sprint(f.sci.user.ID)},
		"read-3": {"event.action": "measures.read", "event.outcome": "failure", "user.id": fmt.Sprint(f.other.user.ID), "http.response.status_code": float64(404)},
		"read-4": {"event.action": "measures.read", "event.outcome": "failure", "user.id": fmt.Sprint(f.sci.user.ID), "http.response.status_code": float64(400)},
		"read-5": {"event.action": "sensors.read", "event.outcome": "success", "user.id": fmt.Sprint(f.admin.user.ID)},
		"read-6": {"event.action": "sensors.read", "event.outcome": "failure", "user.id": fmt.Sprint(f.auditor.user.ID), "http.response.status_code": float64(403)},
	}
	for id, fields := range want {
		ev, ok := byID[id]
		if !ok {
			t.Errorf("no audit event for request %s", id)
			continue
		}
		fields["event.category"] = "audit"
		fields["mymonit.experiment"] = "exp"
		for k, v := range fields {
			if ev[k] != v {
				t.Errorf("request %s: audit %s = %v, want %v", id, k, ev[k], v)
			}
		}
	}
	if len(byID) != len(want) {
		t.Errorf("%d audit events of reads, want %d (an unauthenticated call is no event): %v", len(byID), len(want), byID)
	}
}

// TestMeasuresCSVAbortsOnFailure stores a row the API cannot read (tags
// that are not strings) after thousands of good ones: the JSON page that
// holds it is a 500 problem, and the CSV stream, which has begun by then,
// is cut off so that the client sees a broken transfer, not a short file.
func TestMeasuresCSVAbortsOnFailure(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	ctx := testCtx(t)
	x, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: "broken"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := e.store.EnsureSeries(ctx, []storage.SeriesKey{{ExperimentID: x.ID, Sensor: "a"}, {ExperimentID: x.ID, Sensor: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]storage.Row, 12000)
	for i := range rows {
		rows[i] = storage.Row{SeriesID: ids[storage.SeriesKey{ExperimentID: x.ID, Sensor: "a"}], Time: mt0.Add(time.Duration(i) * time.Second), Value: float64(i)}
	}
	if err := e.store.UpsertMeasures(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.ExecContext(ctx, "INSERT INTO measures (series_id, `time`, value, tags) VALUES (?, ?, 1, '{\"n\":1}')",
		ids[storage.SeriesKey{ExperimentID: x.ID, Sensor: "b"}], mt0); err != nil {
		t.Fatal(err)
	}

	r := e.get(t, "/v1/experiments/broken/measures?sensor=b", admin.token, nil)
	wantStatus(t, "JSON page with the bad row", r, http.StatusInternalServerError)
	if p := r.problem(t); strings.Contains(p.Detail, "json") || strings.Contains(p.Detail, "series") {
		t.Errorf("the problem leaks internals: %q", p.Detail)
	}

	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/experiments/broken/measures", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin.token)
	req.Header.Set("Accept", "text/csv")
	req.Header.Set("X-Request-ID", "broken-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the broken stream: %v, want unexpected EOF", err)
	}
	if n := strings.Count(string(body), "\n"); n < 1000 || n > 12001 {
		t.Errorf("%d lines before the break", n)
	}
	if strings.Contains(string(body), "problem") {
		t.Errorf("a problem document was written into the CSV")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "measures stream failed after the response began") {
		t.Error("the failure is not logged")
	}
	evs := auditEvents(t, e, "measures.read")
	found := false
	for _, ev := range evs {
		if ev["http.request.id"] == "broken-stream" {
			found = true
			if ev["event.outcome"] != "failure" {
				t.Errorf("audit outcome %v, want failure", ev["event.outcome"])
			}
		}
	}
	if !found {
		t.Error("no audit event for the broken stream")
	}
}

// TestMeasuresCSVConstantMemory streams a CSV much larger than the memory
// the server may use for it: heap in use, sampled while the client reads,
// stays far below the size of the data (rows as Go values would take
// several times the CSV's size).
func TestMeasuresCSVConstantMemory(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	ctx := testCtx(t)
	x, err := e.store.CreateExperiment(ctx, storage.Experiment{Slug: "big"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []storage.SeriesKey
	for i := range 3 {
		keys = append(keys, storage.SeriesKey{ExperimentID: x.ID, Sensor: fmt.Sprintf("detector/plane-%d/temperature", i)})
	}
	ids, err := e.store.EnsureSeries(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	const n = 150000
	for from := 0; from < n; from += 10000 {
		rows := make([]storage.Row, 0, 10000)
		for i := from; i < from+10000; i++ {
			rows = append(rows, storage.Row{SeriesID: ids[keys[i%3]], Time: mt0.Add(time.Duration(i) * time.Millisecond),
				Value: float64(i) / 7, Unit: "K", Tags: map[string]string{"run": "r42"}})
		}
		if err := e.store.UpsertMeasures(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	base := heap()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/experiments/big/measures", nil)
	req.Header.Set("Authorization", "Bearer "+admin.token)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cr := csv.NewReader(resp.Body)
	var peak uint64
	lines, size := 0, 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		for _, f := range rec {
			size += len(f) + 1
		}
		if lines++; lines%25000 == 0 {
			peak = max(peak, heap())
		}
	}
	if lines != n+1 {
		t.Fatalf("%d lines, want %d", lines, n+1)
	}
	growth := int64(peak) - int64(base)
	t.Logf("CSV of %d rows, %.1f MB; heap in use grew by at most %.1f MB while streaming", n, float64(size)/1e6, float64(growth)/1e6)
	if growth > int64(size)/3 {
		t.Errorf("heap grew by %d bytes while streaming %d bytes of CSV: rows are being held", growth, size)
	}
}
