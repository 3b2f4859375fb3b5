package httpapi_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/mymonit/mymonit/pkg/storage"
)

// FuzzParsing sends arbitrary bodies and query strings, as an admin, to
// the routes that parse them: no input may yield a 5xx. `go test` runs the
// seeds; `go test -fuzz FuzzParsing` explores (needs MariaDB and the Auth
// Emulator like the other tests).
func FuzzParsing(f *testing.F) {
	e := newEnv(f)
	admin := e.signUp(storage.RoleAdmin)
	if _, err := e.store.CreateExperiment(testCtx(f), storage.Experiment{Slug: "fuzz"}); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ body, query string }{
		{`{"firebase_uid":"a","role":"admin"}`, "role=admin&limit=2"},
		{`{"name":"\u0000","email":"a@b","firebase_uid":" x ","role":"scientist"}`, "cursor=dTox"},
		{`{"name":null,"description":1e999}`, "limit=-1&limit=2"},
		{`{"id":"a..b","name":"` + "\xff" + `"}`, "role=%zz"},
		{`[`, "cursor=" + url.QueryEscape("u:9223372036854775808")},
		{`{"role":{"$ne":1}}`, "firebase=1&x"},
		{"", ";;&&=="},
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
