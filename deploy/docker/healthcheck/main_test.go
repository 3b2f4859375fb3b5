package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantOut string
		wantErr string
	}{
		{"http 200 from argument", []string{ok.URL + "/healthz"}, nil, "200 OK", ""},
		{"http 200 from environment", nil, map[string]string{"MYMONIT_HEALTHCHECK_URL": ok.URL + "/healthz"}, "200 OK", ""},
		{"argument wins over environment", []string{ok.URL + "/healthz"}, map[string]string{"MYMONIT_HEALTHCHECK_URL": failing.URL}, "200 OK", ""},
		{"http 503", []string{failing.URL + "/healthz"}, nil, "", "503 Service Unavailable"},
		{"http 404", []string{ok.URL + "/nope"}, nil, "", "404 Not Found"},
		{"http refused", []string{"http://" + closedAddr + "/healthz"}, nil, "", "refused"},
		{"tcp open", []string{"tcp://" + l.Addr().String()}, nil, "ok", ""},
		{"tcp refused", []string{"tcp://" + closedAddr}, nil, "", "connect " + closedAddr},
		{"no url", nil, nil, "", "MYMONIT_HEALTHCHECK_URL"},
		{"two arguments", []string{"a", "b"}, nil, "", "usage"},
		{"bad scheme", []string{"ftp://127.0.0.1:21"}, nil, "", `scheme "ftp"`},
		{"no host", []string{"/healthz"}, nil, "", "want http://host:port/path"},
		{"bad timeout", []string{ok.URL}, map[string]string{"MYMONIT_HEALTHCHECK_TIMEOUT": "soon"}, "", "MYMONIT_HEALTHCHECK_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &out)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run: error %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output %q, want it to contain %q", out.String(), tt.wantOut)
			}
		})
	}
}
