package logging_test

import (
	"strings"
	"testing"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/logging"
)

func TestConfigFromEnvironment(t *testing.T) {
	env := map[string]string{"MYMONIT_LOG_LEVEL": "debug", "MYMONIT_LOGSTASH_ADDR": "logstash:5000"}
	var c logging.Config
	err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Options("ingest", "v1")
	if o.Level != "debug" || o.LogstashAddr != "logstash:5000" || o.BufferSize != 8192 || o.Service != "ingest" {
		t.Errorf("options = %+v", o)
	}
	env["MYMONIT_LOGSTASH_ADDR"] = "no-port"
	if err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, &c); err == nil || !strings.Contains(err.Error(), "MYMONIT_LOGSTASH_ADDR") {
		t.Errorf("bad address: %v", err)
	}
	env["MYMONIT_LOG_LEVEL"] = "loud"
	if err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, &c); err == nil || !strings.Contains(err.Error(), "MYMONIT_LOG_LEVEL") {
		t.Errorf("bad level: %v", err)
	}
}
