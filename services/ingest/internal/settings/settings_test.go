package settings_test

import (
	"strings"
	"testing"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

func load(vars map[string]string) (settings.Config, error) {
	var c settings.Config
	err := config.LoadFrom(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, nil, &c)
	return c, err
}

func TestDefaultsAndLimits(t *testing.T) {
	for _, tc := range []struct {
		name        string
		vars        map[string]string
		err         string // part of the error; "" for none
		windowBytes int
	}{
		{name: "defaults", windowBytes: 24 << 20},
		{name: "fixed window", vars: map[string]string{"MYMONIT_INGEST_WINDOW_MIB": "0"}, windowBytes: 0},
		{name: "negative window", vars: map[string]string{"MYMONIT_INGEST_WINDOW_MIB": "-1"}, err: "MYMONIT_INGEST_WINDOW_MIB=-1: must be at least 0"},
		{name: "no writers", vars: map[string]string{"MYMONIT_INGEST_WRITERS": "0"}, err: "MYMONIT_INGEST_WRITERS=0: must be at least 1"},
		{name: "more writers than connections", vars: map[string]string{"MYMONIT_INGEST_WRITERS": "4", "MYMONIT_MYSQL_MAX_OPEN_CONNS": "3"},
			err: "MYMONIT_INGEST_WRITERS=4 must not exceed MYMONIT_MYSQL_MAX_OPEN_CONNS=3"},
		{name: "negative memory limit", vars: map[string]string{"MYMONIT_INGEST_MEMORY_LIMIT_MIB": "-1"}, err: "MYMONIT_INGEST_MEMORY_LIMIT_MIB=-1: must be at least 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"MYMONIT_MYSQL_DSN": "u:p@tcp(h:3306)/d", "MYMONIT_AMQP_URL": "amqp://h/"}
			for k, v := range tc.vars {
				vars[k] = v
			}
			c, err := load(vars)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Ingest.WindowBytes(); got != tc.windowBytes {
				t.Errorf("WindowBytes() = %d, want %d", got, tc.windowBytes)
			}
		})
	}
}
