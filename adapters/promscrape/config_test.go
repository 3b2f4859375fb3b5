package promscrape_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/adapters/promscrape"
	"github.com/mymonit/mymonit/pkg/config"
)

func TestParseTargets(t *testing.T) {
	yamlFile := `
targets:
  - url: http://127.0.0.1:9100/metrics
    experiment: lab-node
    labels: {instance: node1}
    drop_labels: [job]
  - url: https://user:pw@example.org/metrics
    experiment: lab-node
    labels: {instance: node2}
    interval: 1m
    timeout: 5s
`
	got, err := promscrape.ParseTargets([]byte(yamlFile), 15*time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []promscrape.Target{
		{URL: "http://127.0.0.1:9100/metrics", Experiment: "lab-node", Labels: map[string]string{"instance": "node1"}, DropLabels: []string{"job"}, Interval: 15 * time.Second, Timeout: 10 * time.Second},
		{URL: "https://user:pw@example.org/metrics", Experiment: "lab-node", Labels: map[string]string{"instance": "node2"}, Interval: time.Minute, Timeout: 5 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if name := got[1].Name(); strings.Contains(name, "pw") {
		t.Errorf("Name() shows the password: %s", name)
	}

	jsonFile := `{"targets":[{"url":"http://h/metrics","experiment":"e1","interval":"2s"}]}`
	got, err = promscrape.ParseTargets([]byte(jsonFile), 15*time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Interval != 2*time.Second || got[0].Timeout != 2*time.Second {
		t.Errorf("JSON target: interval %s timeout %s, want 2s and the timeout capped to it", got[0].Interval, got[0].Timeout)
	}
}

func TestParseTargetsErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // each must appear in the error
	}{
		{"empty file", "", []string{"no targets"}},
		{"no targets", "targets: []\n", []string{"no targets"}},
		{"unknown field", "targets:\n  - url: http://h/m\n    experimnt: x\n", []string{"line 3", "experimnt"}},
		{"not a list", "targets: 3\n", []string{"line 1"}},
		{"bad duration", "targets:\n  - url: http://h/m\n    experiment: x\n    interval: soon\n", []string{"line 4", "soon"}},
		{
			"each bad field named with its target and line",
			"targets:\n" +
				"  - url: ftp://h/m\n    experiment: Bad_Name\n" +
				"  - experiment: ok\n    labels: {le: x, __x: y, 9a: z}\n    timeout: 1h\n",
			[]string{
				`targets[0] (line 2): url "ftp://h/m": scheme must be http or https`,
				`targets[0] (line 2): experiment`,
				`targets[1] (line 4): url: missing`,
				`targets[1] (line 4): labels: "le" is set by the mapping`,
				`targets[1] (line 4): labels: "__x": names starting with __ are reserved`,
				`targets[1] (line 4): labels: "9a" is not a label name`,
				`targets[1] (line 4): timeout: 1h0m0s, must be positive and at most the interval`,
			},
		},
		{
			"two targets whose series would collide",
			"targets:\n  - {url: http://a/m, experiment: e, labels: {i: x}}\n  - {url: http://b/m, experiment: e, labels: {i: x}}\n",
			[]string{"targets[1] (line 3): same experiment \"e\" and labels as targets[0]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := promscrape.ParseTargets([]byte(tt.file), 15*time.Second, 10*time.Second)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(file, []byte("targets:\n  - {url: http://h/m, experiment: e}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MYMONIT_PROMSCRAPE_CONFIG": file, "MYMONIT_PROMSCRAPE_INTERVAL": "30s"}
	var c promscrape.Config
	if err := config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile, &c); err != nil {
		t.Fatal(err)
	}
	ts, err := promscrape.LoadTargets(c)
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].Interval != 30*time.Second || ts[0].Timeout != 10*time.Second {
		t.Errorf("defaults not applied: %+v", ts[0])
	}

	env["MYMONIT_PROMSCRAPE_TIMEOUT"] = "1m"
	err = config.LoadFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile, &c)
	if err == nil || !strings.Contains(err.Error(), "MYMONIT_PROMSCRAPE_TIMEOUT=1m0s: must not be longer than MYMONIT_PROMSCRAPE_INTERVAL") {
		t.Errorf("timeout longer than interval: %v", err)
	}

	c.File = filepath.Join(dir, "missing.yaml")
	if _, err := promscrape.LoadTargets(c); err == nil || !strings.Contains(err.Error(), "MYMONIT_PROMSCRAPE_CONFIG") {
		t.Errorf("missing file: %v", err)
	}
}
