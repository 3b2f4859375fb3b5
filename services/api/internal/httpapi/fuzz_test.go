package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/storage"
)

// FuzzParsing sends arbitrary bodies, query strings, path parameters and
// Accept headers, as an admin, to the routes that parse them: no input may
// yield a 5xx. `go test` runs the
// seeds; `go test -fuzz FuzzParsing` explores (needs MariaDB and the Auth
// Emulator like the other tests).
func FuzzParsing(f *testing.F) {
	e := newEnv(f)
	admin := e.signUp(storage.RoleAdmin)
	x, err := e.store.CreateExperiment(testCtx(f), storage.Experiment{Slug: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	// A few measures, so that the reads below run their statements.
	key := storage.SeriesKey{ExperimentID: x.ID, Sensor: "t"}
	ids, err := e.store.EnsureSeries(testCtx(f), []storage.SeriesKey{key})
	if err != nil {
		f.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := e.store.UpsertMeasures(testCtx(f), []storage.Row{
		{SeriesID: ids[key], Time: t0, Value: 1}, {SeriesID: ids[key], Time: t0.Add(90 * time.Second), Value: -2, Tags: map[string]string{"a": "b"}},
	}); err != nil {
		f.Fatal(err)
	}
	cursor := func(s string) string { return url.QueryEscape(base64.RawURLEncoding.EncodeToString([]byte(s))) }
	for _, seed := range []struct{ body, query string }{
		{`{"firebase_uid":"a","role":"admin"}`, "role=admin&limit=2"},
		{`{"name":"\u0000","email":"a@b","firebase_uid":" x ","role":"scientist"}`, "cursor=dTox"},
		{`{"name":null,"description":1e999}`, "limit=-1&limit=2"},
		{`{"id":"a..b","name":"` + "\xff" + `"}`, "role=%zz"},
		{`[`, "cursor=" + url.QueryEscape("u:9223372036854775808")},
		{`{"role":{"$ne":1}}`, "firebase=1&x"},
		{"", ";;&&=="},
		{"", "sensor=t&sensor=%CF%84&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00%2B01:00&limit=1"},
		{"", "every=1m&agg=avg,count&agg=max&cursor=" + cursor("b:1:0")},
		{"", "every=366d&from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999999Z"},
		{"", "every=1ms&from=1970-01-01T00:00:00Z&limit=10000"},
		{"", "cursor=" + cursor("m:1:-99999999999999999")},
		{"", "cursor=" + cursor("m:9223372036854775807:253402300799999999")},
		{"", "every=1.5ms&from=2026-01-01t00:01:30.0000001z"},
	} {
		f.Add(seed.body, seed.query)
	}
	f.Fuzz(func(t *testing.T, body, query string) {
		for _, target := range []struct{ method, path string }{
			{"POST", "/v1/users"},
			{"PATCH", "/v1/users/1"},
			{"POST", "/v1/experiments"},
			{"PATCH", "/v1/experiments/fuzz"},
			{"GET", "/v1/users"},
			{"DELETE", "/v1/users/999999"},
			{"GET", "/v1/experiments/fuzz/measures"},
			{"GET", "/v1/experiments/fuzz/sensors"},
		} {
			var b any
			if target.method != "GET" && target.method != "DELETE" {
				b = body
			}
			r := e.doT(t, target.method, target.path+"?"+requestTarget(query), admin.token, b)
			if r.status >= 500 {
				t.Errorf("%s %s?%q with %q: %d %s", target.method, target.path, query, body, r.status, r.body)
			}
		}
		// The query as a path parameter (an experiment slug, a user id); an
		// empty one names another route.
		seg := url.PathEscape(query)
		if seg == "" {
			seg = "%20"
		}
		for _, target := range []struct{ method, path string }{
			{"GET", "/v1/experiments/" + seg},
			{"GET", "/v1/experiments/" + seg + "/measures"},
			{"GET", "/v1/experiments/" + seg + "/sensors"},
			{"GET", "/v1/experiments/" + seg + "/members"},
			{"GET", "/v1/users/" + seg},
			{"GET", "/v1/users/" + seg + "/experiments"},
			{"PUT", "/v1/experiments/fuzz/members/" + seg},
			{"DELETE", "/v1/experiments/fuzz/members/" + seg},
		} {
			r := e.doT(t, target.method, target.path, admin.token, nil)
			if r.status >= 500 {
				t.Errorf("%s %s: %d %s", target.method, target.path, r.status, r.body)
			}
		}
		// The measures again as a CSV stream, with the fuzzed body as the
		// Accept header when it can be one.
		accept := "text/csv"
		if !strings.ContainsFunc(body, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			accept += ", " + body
		}
		r := e.get(t, "/v1/experiments/fuzz/measures?"+requestTarget(query), admin.token, map[string]string{"Accept": accept})
		if r.status >= 500 {
			t.Errorf("CSV measures?%q (Accept %q): %d %s", query, accept, r.status, r.body)
		}
	})
}

// requestTarget escapes what cannot appear raw in an HTTP request line
// (controls, space, non-ASCII, '#'), leaving everything else, malformed
// percent escapes included, for the server to judge.
func requestTarget(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
