package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, tc := range []struct {
		name      string
		mib       int
		gomemlim  string
		wantLimit int64
		wantField string
	}{
		{name: "setting", mib: 40, wantLimit: 40 << 20, wantField: "40 MiB"},
		{name: "none", mib: 0, wantLimit: math.MaxInt64, wantField: "none"},
		{name: "GOMEMLIMIT wins", mib: 40, gomemlim: "100MiB", wantLimit: 123 << 20, wantField: "GOMEMLIMIT=100MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(123 << 20) // as the runtime would have set from GOMEMLIMIT
			env := func(k string) (string, bool) {
				if k == "GOMEMLIMIT" && tc.gomemlim != "" {
					return tc.gomemlim, true
				}
				return "", false
			}
			f := memoryLimit(tc.mib, env)
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit = %d, want %d", got, tc.wantLimit)
			}
			if f.String != tc.wantField {
				t.Errorf("log field = %q, want %q", f.String, tc.wantField)
			}
		})
	}
}
