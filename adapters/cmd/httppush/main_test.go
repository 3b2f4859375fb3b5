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
	"github.com/mymonit/mymonit/adapters/internal/command"
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
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if errOut.Len() > 0 {
		t.Errorf("help wrote to stderr:\n%s", errOut.String())
	}
}

// TestCommandLine checks the exit status and what goes to stdout and
// stderr, for serve and the key commands.
func TestCommandLine(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		code       int
		wantStdout string // contained in stdout; "": stdout is empty
		wantStderr string // contained in stderr; "": stderr is empty
	}{
		{name: "help with a bad environment", env: map[string]string{"MYMONIT_ADAPTER_BATCH_SIZE": "lots"}, args: []string{"serve", "-help"}, code: 0, wantStdout: "POST /v1/measures"},
		{name: "bad flag", args: []string{"-lisen", ":1"}, code: 2, wantStderr: "flag provided but not defined: -lisen\nrun httppush -help for the flags, the key commands and the answers\n"},
		{name: "stray argument", args: []string{"serve", "now"}, code: 2, wantStderr: `httppush: unexpected argument "now" (run httppush -help)` + "\n"},
		{name: "bad environment", env: map[string]string{"MYMONIT_ADAPTER_BATCH_SIZE": "lots"}, code: 1, wantStderr: "httppush: configuration:\nMYMONIT_ADAPTER_BATCH_SIZE=\"lots\""},
		// Only the bad flag: the check sees the loaded configuration.
		{name: "bad flag value", args: []string{"-batch-size", "0"}, code: 1, wantStderr: "httppush: configuration:\nMYMONIT_ADAPTER_BATCH_SIZE (-batch-size): 0 is not between 1 and 10000\n"},
		{name: "key help", args: []string{"key", "create", "--help"}, code: 0, wantStdout: "  -experiments string"},
		{name: "key bad flag", args: []string{"key", "list", "-name", "x"}, code: 2, wantStderr: "flag provided but not defined: -name\nrun httppush key list -help for the flags, the key commands and the answers\n"},
		{name: "key stray argument", args: []string{"key", "revoke", "-keys-file", keys, "lab-3"}, code: 2, wantStderr: `httppush: unexpected argument "lab-3" (run httppush key revoke -help)` + "\n"},
		{name: "key list", args: []string{"key", "list", "-keys-file", keys}, code: 1, wantStderr: "keys.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if code := command.Exit("httppush", err, &errOut); code != tt.code {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", code, tt.code, errOut.String())
			}
			for _, o := range []struct{ name, got, want string }{{"stdout", out.String(), tt.wantStdout}, {"stderr", errOut.String(), tt.wantStderr}} {
				if (o.want == "") != (o.got == "") || !strings.Contains(o.got, o.want) {
					t.Errorf("%s:\n%s\nwant it to contain %q", o.name, o.got, o.want)
				}
			}
		})
	}
}
