package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mymonit/mymonit/pkg/testenv"
	"github.com/mymonit/mymonit/services/api/internal/auth"
	"github.com/mymonit/mymonit/services/api/internal/auth/authtest"
)

// smokeArgs are the tiny sizes of the smoke runs.
var smokeArgs = []string{
	"-measures", "20000", "-sensors", "10", "-rounds", "1", "-queries", "3",
	"-clients", "4", "-duration", "200ms", "-export-rows", "5000",
}

// TestSmoke runs the whole harness with tiny sizes against the real
// MariaDB and the real Auth Emulator: a fresh database dropped at the end,
// then twice with -keep, the second run reusing the loaded database.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	emu := authtest.Start(t)
	t.Setenv(auth.EmulatorHostEnv, emu.Host)

	t.Run("fresh database, JSON", func(t *testing.T) {
		var out, progress bytes.Buffer
		if err := run(ctx, slices.Concat(smokeArgs, []string{"-json"}), &out, &progress); err != nil {
			t.Fatalf("run: %v\n%s", err, progress.String())
		}
		var res results
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("decode -json output: %v\n%s", err, out.String())
		}
		if res.Setup.Load == nil || res.Setup.Load.Rows != 20000 || res.Setup.Reused {
			t.Errorf("setup = %+v, want 20000 rows loaded", res.Setup)
		}
		if g := res.Range; g == nil || g.Points != 2000 || g.API.Samples != 3 || g.Store.Samples != 3 || g.Direct.Samples != 3 || g.Prepared.Samples != 3 ||
			g.API.P50Ms <= 0 || g.Direct.P50Ms <= 0 {
			t.Errorf("range = %+v, want 3 samples of a 2000-point query per variant", g)
		}
		// 5000 rows rounded up to whole time steps of 10 sensors.
		if e := res.Export; e == nil || e.Rows != 5000 || e.Bytes <= int64(len(csvHeader)) || e.API.Median <= 0 || e.Direct.Median <= 0 {
			t.Errorf("export = %+v, want 5000 rows exported", e)
		}
		if c := res.Concurrent; c == nil || c.Healthz == nil || c.Bypassed == nil || c.Cached == nil || c.Cached.Median <= 0 {
			t.Errorf("concurrent = %+v, want the three rates", c)
		}
		var names []string
		for _, c := range res.Checks {
			names = append(names, c.Name)
		}
		want := []string{checkRangeP50, checkRangeP99, checkCSVRate, checkCSVHeap, checkCachedVsBypa}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("checks %v, want %v", names, want)
		}
		if exists(t, res.Setup.Database) {
			t.Errorf("database %s of the run was not dropped", res.Setup.Database)
		}
	})

	t.Run("keep, then reuse", func(t *testing.T) {
		name := testenv.Name("mymonit_apibench_keep")
		t.Cleanup(func() { drop(t, name) })
		args := slices.Concat(smokeArgs, []string{"-keep", "-keep-db", name})
		var progress bytes.Buffer
		if err := run(ctx, args, io.Discard, &progress); err != nil {
			t.Fatalf("first run: %v\n%s", err, progress.String())
		}
		if !exists(t, name) {
			t.Fatalf("-keep database %s was dropped", name)
		}
		var out bytes.Buffer
		progress.Reset()
		if err := run(ctx, args, &out, &progress); err != nil {
			t.Fatalf("second run: %v\n%s", err, progress.String())
		}
		if !strings.Contains(progress.String(), "reused (-keep)") || strings.Contains(progress.String(), "loading") {
			t.Errorf("second run did not reuse the database:\n%s", progress.String())
		}
		for _, s := range []string{"load average", "(reused, -keep)", "2000-point range, API JSON", "export memory", "cached Firebase token"} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("table lacks %q:\n%s", s, out.String())
			}
		}
		if n := strings.Count(out.String(), "PASS") + strings.Count(out.String(), "MISS"); n < 4 {
			t.Errorf("table has %d verdicts, want one per goal:\n%s", n, out.String())
		}
	})
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error; "" for none
	}{
		{"defaults", nil, ""},
		{"sizes of the smoke test", smokeArgs, ""},
		{"measures not a multiple", []string{"-measures", "1001", "-sensors", "10"}, "-measures (1001) must be a multiple of -sensors (10)"},
		{"too few sensors", []string{"-measures", "70", "-sensors", "7"}, "-sensors is 7, must be at least 8"},
		{"points beyond a sensor", []string{"-measures", "20000", "-sensors", "10", "-points", "3000"}, "-points is 3000, at most 2000"},
		{"unknown loader", []string{"-loader", "copy"}, `-loader is "copy"`},
		{"bad keep name", []string{"-keep-db", "Bad-Name"}, `-keep-db is "Bad-Name"`},
		{"short duration", []string{"-duration", "1ms"}, "-duration must be at least 100ms"},
		{"stray argument", []string{"extra"}, `unexpected arguments ["extra"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOptions(tc.args, io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOptionSizes(t *testing.T) {
	for _, tc := range []struct {
		args                []string
		points, exportSteps int
	}{
		{nil, 10000, 2000},
		{smokeArgs, 2000, 500},
		{[]string{"-export-rows", "0"}, 10000, 10000},
		{[]string{"-export-rows", "1001"}, 10000, 2},
	} {
		o, err := parseOptions(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.rangePoints() != tc.points || o.exportSteps() != tc.exportSteps {
			t.Errorf("%v: points %d, export steps %d; want %d, %d", tc.args, o.rangePoints(), o.exportSteps(), tc.points, tc.exportSteps)
		}
	}
}

// admin opens the test server without a database.
func admin(t *testing.T) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(testenv.MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := admin(t).QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func drop(t *testing.T, name string) {
	t.Helper()
	if _, err := admin(t).Exec("DROP DATABASE IF EXISTS " + name); err != nil {
		t.Errorf("drop %s: %v", name, err)
	}
}
