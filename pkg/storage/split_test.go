package storage_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mymonit/mymonit/pkg/storage"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", nil},
		{"only comments", "-- a;\n# b;\n/* c; */\n", nil},
		{"two", "SELECT 1;\nSELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"no final semicolon", "SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"empty statements", ";;SELECT 1;;", []string{"SELECT 1"}},
		{"semicolon in quotes", `SELECT 'a;b', "c;d", ` + "`e;f`;SELECT 2", []string{`SELECT 'a;b', "c;d", ` + "`e;f`", "SELECT 2"}},
		{"escaped quote", `SELECT 'it\'s;'; SELECT 'x''y;z'`, []string{`SELECT 'it\'s;'`, `SELECT 'x''y;z'`}},
		{"backslash in backticks", "SELECT 1 AS `a\\`; SELECT 2", []string{"SELECT 1 AS `a\\`", "SELECT 2"}},
		{"line comments", "SELECT 1 -- one; two\n, 2 # three; four\n;", []string{"SELECT 1  \n, 2"}},
		{"double dash without space is not a comment", "SELECT 1--1;", []string{"SELECT 1--1"}},
		{"block comment", "SELECT /* ; */ 1;", []string{"SELECT   1"}},
		{"comment does not merge tokens", "SELECT/*x*/1", []string{"SELECT 1"}},
		{"executable comment kept", "CREATE TABLE t (id INT) /*!80000 ENGINE=InnoDB */;", []string{"CREATE TABLE t (id INT) /*!80000 ENGINE=InnoDB */"}},
		{"quote inside comment", "-- it's\nSELECT 1;", []string{"SELECT 1"}},
		{"comment marker inside quotes", "SELECT '-- x; /* y'; SELECT 2", []string{"SELECT '-- x; /* y'", "SELECT 2"}},
		{"unterminated quote runs to end", "SELECT 'a;b", []string{"SELECT 'a;b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := storage.SplitStatements(tt.src)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SplitStatements(%q) (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"SELECT 1; SELECT 2", "SELECT ';' -- x\n; /* ; */", "'\\", "--", "/*", "`;`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, s := range storage.SplitStatements(src) {
			if s == "" || s != strings.TrimSpace(s) {
				t.Fatalf("SplitStatements(%q) returned %q: empty or untrimmed", src, s)
			}
		}
		// Statements without quotes or comments split exactly at semicolons.
		if !strings.ContainsAny(src, "'\"`#-/") {
			var want []string
			for _, p := range strings.Split(src, ";") {
				if p = strings.TrimSpace(p); p != "" {
					want = append(want, p)
				}
			}
			if diff := cmp.Diff(want, storage.SplitStatements(src)); diff != "" {
				t.Fatalf("SplitStatements(%q) (-want +got):\n%s", src, diff)
			}
		}
	})
}
