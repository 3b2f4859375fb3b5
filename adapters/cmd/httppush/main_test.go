package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mymonit/mymonit/adapters/httppush"
)

func TestKeyCommands(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"key", "create", "-keys-file", path, "-name", "lab-3", "-experiments", "atlas, cms", "-rate", "50", "-burst", "500"}, &out, &errOut)
	if err != nil {
		t.Fatalf("key create: %v\n%s", err, errOut.String())
	}
	key := strings.TrimSpace(out.String())
	if !strings.HasPrefix(key, httppush.KeyPrefix) || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("stdout %q: want the key alone", out.String())
	}
	if !strings.Contains(errOut.String(), "shown once") {
		t.Errorf("stderr %q lacks the warning", errOut.String())
	}
	keys, err := httppush.LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := keys.Lookup(key); !ok || p.Rate != 50 || p.Burst != 500 || strings.Join(p.Experiments, ",") != "atlas,cms" {
		t.Errorf("stored producer %+v %v", p, ok)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(key)) {
		t.Error("key stored in clear")
	}

	out.Reset()
	if err := run(context.Background(), []string{"key", "list", "-keys-file", path}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "lab-3") || !strings.Contains(out.String(), "atlas,cms") || strings.Contains(out.String(), key) {
		t.Errorf("key list: %q", out.String())
	}
	if err := run(context.Background(), []string{"key", "create", "-keys-file", path, "-name", "lab-3", "-experiments", "atlas"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("duplicate name: %v", err)
	}
	if err := run(context.Background(), []string{"key", "revoke", "-keys-file", path, "-name", "lab-3"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if keys, err := httppush.LoadKeys(path); err != nil || len(keys.Producers()) != 0 {
		t.Errorf("after revoke: %v %v", keys, err)
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-h"}, &out, &errOut)
	if err != flag.ErrHelp {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"POST /v1/measures", "MYMONIT_HTTPPUSH_KEYS_FILE", "key create", "-batch-size"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
