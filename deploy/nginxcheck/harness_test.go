package nginxcheck_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/testenv"
)

// repoRoot is the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test directory")
		}
		dir = parent
	}
}

// nginxBinary finds nginx; a machine without it fails the test.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx is not installed: run scripts/services.sh (make services) to install it")
	return ""
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// edit is one change from the deployed configuration to the test copy:
// old must occur exactly once in file, so that a change to the
// configuration that the test no longer matches fails loudly.
type edit struct {
	file, old, new string
}

// nginx is one running test instance.
type nginx struct {
	httpsURL, httpURL, statusURL string
	accessLog, errorLog          string
	client                       *http.Client // HTTP/2 (ALPN)
	client1                      *http.Client // HTTP/1.1
}

// options of a test instance.
type options struct {
	upstreams []string // api addresses
	edits     []edit   // on top of the standard ones
}

// startNginx copies nginx/, makes the certificate with
// scripts/compose-secrets.sh, rewrites what only makes sense in a container
// (user, paths, ports, upstream), checks the result with `nginx -t` and
// serves it in the foreground until the test ends.
func startNginx(t *testing.T, o options) *nginx {
	t.Helper()
	bin := nginxBinary(t)
	root := repoRoot(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.CopyFS(conf, os.DirFS(filepath.Join(root, "nginx"))); err != nil {
		t.Fatal(err)
	}
	// CopyFS makes read-only copies of read-only files; the edits write.
	_ = filepath.WalkDir(conf, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chmod(p, 0o644)
		}
		return err
	})
	secrets := filepath.Join(dir, "secrets")
	script := exec.Command("bash", filepath.Join(root, "scripts", "compose-secrets.sh"))
	script.Env = append(os.Environ(), "MYMONIT_SECRETS_DIR="+secrets)
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("compose-secrets.sh: %v\n%s", err, out)
	}
	for _, d := range []string{"logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := &nginx{
		accessLog: filepath.Join(dir, "logs", "access.log"),
		errorLog:  filepath.Join(dir, "logs", "error.log"),
	}
	https, plain, status := freeAddr(t), freeAddr(t), freeAddr(t)
	n.httpsURL, n.httpURL, n.statusURL = "https://"+https, "http://"+plain, "http://"+status

	userLine := "" // not root: nginx runs as the current user anyway
	if os.Geteuid() == 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		userLine = "user " + u.Username + ";"
	}
	var servers strings.Builder
	for _, a := range o.upstreams {
		fmt.Fprintf(&servers, "    server %s max_fails=3 fail_timeout=10s;\n", a)
	}

	edits := append([]edit{
		{"nginx.conf", "user nginx;", userLine},
		{"nginx.conf", "pid /var/run/nginx.pid;", "pid " + filepath.Join(dir, "nginx.pid") + ";"},
		{"nginx.conf", "error_log /var/log/nginx/error.log warn;", "error_log " + n.errorLog + " warn;"},
		{"nginx.conf", "access_log /var/log/nginx/access.log mymonit_json;", "access_log " + n.accessLog + " mymonit_json;"},
		{"conf.d/upstream.conf", "    server api:8080 max_fails=3 fail_timeout=10s;\n", servers.String()},
		{"conf.d/mymonit.conf", "listen 80 default_server;", "listen " + plain + " default_server;"},
		{"conf.d/mymonit.conf", "listen 443 ssl http2 default_server;", "listen " + https + " ssl http2 default_server;"},
		{"conf.d/mymonit.conf", "listen 127.0.0.1:8081;", "listen " + status + ";"},
		{"conf.d/mymonit.conf", "/run/secrets/nginx_tls_cert;", filepath.Join(secrets, "nginx_tls_cert") + ";"},
		{"conf.d/mymonit.conf", "/run/secrets/nginx_tls_key;", filepath.Join(secrets, "nginx_tls_key") + ";"},
	}, o.edits...)
	for _, e := range edits {
		p := filepath.Join(conf, e.file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if c := bytes.Count(b, []byte(e.old)); c != 1 {
			t.Fatalf("nginx/%s: %q occurs %d times, want once (the test copy no longer matches the configuration)", e.file, e.old, c)
		}
		if err := os.WriteFile(p, bytes.Replace(b, []byte(e.old), []byte(e.new), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Temporary files under the test directory (the compiled-in paths are
	// the package's, writable by root only).
	var temp strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temp, "%s_temp_path %s;\n", k, filepath.Join(dir, "temp", k))
	}
	if err := os.WriteFile(filepath.Join(conf, "conf.d", "zz-test-temp-paths.conf"), []byte(temp.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	args := []string{"-p", dir, "-c", filepath.Join(conf, "nginx.conf"), "-e", n.errorLog, "-g", "daemon off;"}
	check, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput()
	if err != nil || !bytes.Contains(check, []byte("test is successful")) {
		t.Fatalf("nginx -t: %v\n%s", err, check)
	}

	var out testenv.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: finish requests, flush logs
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			errs, _ := os.ReadFile(n.errorLog)
			t.Logf("nginx output:\n%s\nerror log:\n%s", out.String(), errs)
		}
	})
	waitListening(t, https, exited)

	pem, err := os.ReadFile(filepath.Join(secrets, "nginx_tls_cert"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("nginx_tls_cert: no PEM certificate")
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	n.client = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: noRedirect,
	}
	n.client1 = &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		},
		CheckRedirect: noRedirect,
	}
	t.Cleanup(n.client.CloseIdleConnections)
	t.Cleanup(n.client1.CloseIdleConnections)
	return n
}

// waitListening waits until addr accepts connections, or the process that
// should open it exits.
func waitListening(t *testing.T, addr string, exited <-chan error) {
	t.Helper()
	for range 600 {
		select {
		case err := <-exited:
			t.Fatalf("the process serving %s exited: %v", addr, err)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 30s", addr)
}

// do sends a request through nginx and returns the answer with its body
// read.
func (n *nginx) do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	resp, err := n.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body.Bytes()
}

// get sends a GET through nginx.
func (n *nginx) get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n.do(t, req)
}
