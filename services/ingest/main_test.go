package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/services/ingest/internal/settings"
)

func TestAppValidates(t *testing.T) {
	var cfg settings.Config
	if err := config.LoadFrom(func(string) (string, bool) { return "", false }, nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := fx.ValidateApp(appOptions(cfg)...); err != nil {
		t.Fatal(err)
	}
}

// The README's configuration reference is the one the code declares.
func TestREADMEConfigReference(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config:ingest -->\n", "<!-- /config:ingest -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q section", begin, end)
	}
	got := s[i+len(begin) : j]
	want := config.Markdown(settings.Config{})
	if got != want {
		t.Errorf("README.md configuration reference is stale; replace it with the output of `ingest config`:\n%s", want)
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"bogus"}, &out, &errb); err == nil || !strings.Contains(errb.String(), `unknown command "bogus"`) {
		t.Errorf("unknown command: %v %q", err, errb.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "dlq replay") {
		t.Errorf("help: %v %q", err, out.String())
	}
}
