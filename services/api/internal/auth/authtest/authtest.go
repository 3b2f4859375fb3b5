// Package authtest runs the Firebase Auth Emulator for tests and mints
// tokens through its REST API, as a client app would.
//
// Start finds or starts an emulator:
//
//  1. FIREBASE_AUTH_EMULATOR_HOST, when set, must answer (CI starts one with
//     scripts/firebase-emulator.sh start);
//  2. otherwise 127.0.0.1:9099, when an emulator answers there;
//  3. otherwise it starts services/api/firebase/start-auth-emulator.js on a
//     free port, and stops it when the test ends.
//
// It fails the test, never skips it, when none of that works; the message
// says to run `bash scripts/firebase-emulator.sh ensure` (npm ci).
//
// Run does the same for programs that are not tests (benchmark harnesses):
// it takes a context, returns errors and a function that stops the emulator
// it started. SignUpContext is SignUp for them.
package authtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"

	"github.com/mymonit/mymonit/pkg/testenv"
)

// Emulator defaults.
const (
	ProjectID   = "demo-mymonit"
	APIKey      = "fake-api-key"
	DefaultHost = "127.0.0.1:9099"
	// EmulatorHostEnv is the variable the Admin SDK reads.
	EmulatorHostEnv = "FIREBASE_AUTH_EMULATOR_HOST"
)

// Emulator is a reachable Auth Emulator.
type Emulator struct {
	// Host is host:port, the value for FIREBASE_AUTH_EMULATOR_HOST.
	Host string
	// ProjectID is the project its tokens are minted for.
	ProjectID string
	// StartTime is how long starting it took (0 when it was already running).
	StartTime time.Duration

	client *http.Client
}

// User is an account created in the emulator.
type User struct {
	UID      string
	Email    string
	Password string
	// IDToken is the ID token returned by sign-up.
	IDToken string
}

// Start returns a running emulator (see the package documentation).
func Start(t testing.TB) *Emulator {
	t.Helper()
	e, stop, err := Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the auth emulator: %v", err)
		}
	})
	return e
}

// StartNew starts a private emulator on a free port, stopped when the test
// ends.
func StartNew(t testing.TB) *Emulator {
	t.Helper()
	e, stop, err := RunNew(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the auth emulator: %v", err)
		}
	})
	return e
}

// Run finds or starts an emulator as Start does, for code that is not a
// test. The returned stop function stops the emulator Run started (it does
// nothing for one that was already running); call it once, also after an
// error. ctx bounds the start, not the emulator's life.
func Run(ctx context.Context) (*Emulator, func() error, error) {
	noop := func() error { return nil }
	if host := os.Getenv(EmulatorHostEnv); host != "" {
		e := newEmulator(host)
		if err := e.ping(); err != nil {
			return nil, noop, fmt.Errorf("%s=%s does not answer as a Firebase Auth Emulator: %w", EmulatorHostEnv, host, err)
		}
		return e, noop, nil
	}
	if e := newEmulator(DefaultHost); e.ping() == nil {
		return e, noop, nil
	}
	return RunNew(ctx)
}

// RunNew starts a private emulator on a free port, as StartNew does, for
// code that is not a test; stop stops it (call it once, also after an
// error).
func RunNew(ctx context.Context) (e *Emulator, stop func() error, err error) {
	stop = func() error { return nil }
	dir, err := firebaseDir()
	if err != nil {
		return nil, stop, err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "firebase-tools", "package.json")); err != nil {
		return nil, stop, fmt.Errorf("firebase-tools is not installed in %s: run `bash scripts/firebase-emulator.sh ensure` "+
			"(npm ci) from the repository root, or set %s to a running emulator", dir, EmulatorHostEnv)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return nil, stop, fmt.Errorf("node not found (the Auth Emulator needs Node.js 20 or later; scripts/firebase-emulator.sh ensure installs it): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, stop, err
	}
	p, err := startProcess(ctx, dir, port)
	if err != nil {
		return nil, stop, err
	}
	e = newEmulator(fmt.Sprintf("127.0.0.1:%d", port))
	e.StartTime = p.startTime
	return e, p.stop, nil
}

func newEmulator(host string) *Emulator {
	return &Emulator{Host: host, ProjectID: ProjectID, client: &http.Client{Timeout: 10 * time.Second}}
}

// ping checks that host answers like the emulator (GET / names it).
func (e *Emulator) ping() error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + e.Host + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("authEmulator")) {
		return fmt.Errorf("GET / answered %s, not the Auth Emulator", resp.Status)
	}
	return nil
}

// firebaseDir finds services/api/firebase above the working directory.
func firebaseDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		candidate := filepath.Join(dir, "firebase", "start-auth-emulator.js")
		if _, err := os.Stat(candidate); err == nil {
			return filepath.Dir(candidate), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("firebase/start-auth-emulator.js not found above the working directory: run from within "+
				"services/api, or set %s to a running emulator (bash scripts/firebase-emulator.sh start)", EmulatorHostEnv)
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// process is a started emulator and the goroutine reading its output.
type process struct {
	cmd       *exec.Cmd
	done      chan struct{} // closed when the output reader has finished
	startTime time.Duration
}

func startProcess(ctx context.Context, dir string, port int) (*process, error) {
	cmd := exec.Command("node", "start-auth-emulator.js",
		"--host", "127.0.0.1", "--port", fmt.Sprint(port), "--project", ProjectID)
	cmd.Dir = dir
	stderr := &testenv.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("auth emulator stdout: %w", err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the auth emulator: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		s := bufio.NewScanner(stdout)
		signalled := false
		for s.Scan() {
			if !signalled && strings.HasPrefix(s.Text(), "auth emulator ready") {
				close(ready)
				signalled = true
			}
		}
		// Drain whatever remains so that the child never blocks on a write.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
		p.startTime = time.Since(began)
		return p, nil
	case <-p.done:
		err := cmd.Wait()
		return nil, fmt.Errorf("the auth emulator exited before it was ready (%v): %s", err, stderr.String())
	case <-time.After(60 * time.Second):
		stopErr := p.stop()
		return nil, fmt.Errorf("the auth emulator was not ready within 60s (stop: %v): %s", stopErr, stderr.String())
	case <-ctx.Done():
		stopErr := p.stop()
		return nil, fmt.Errorf("starting the auth emulator: %w (stop: %v)", ctx.Err(), stopErr)
	}
}

// stop sends SIGTERM (SIGKILL after 10 s) and waits for the process and the
// reader goroutine.
func (p *process) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if err := p.cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && !exit.Exited() {
			return nil // killed by a signal: stopped
		}
		return fmt.Errorf("auth emulator exit: %w", err)
	}
	return nil
}

// call POSTs body to an identitytoolkit v1 method of the emulator and
// decodes the answer into out, failing the test on error.
func (e *Emulator) call(t testing.TB, method string, body, out any) {
	t.Helper()
	if err := e.post(context.Background(), method, body, out); err != nil {
		t.Fatal(err)
	}
}

// post POSTs body to an identitytoolkit v1 method of the emulator and
// decodes the answer into out. Admin methods (under projects/) are
// authorized with the emulator's "Bearer owner".
func (e *Emulator) post(ctx context.Context, method string, body, out any) error {
	buf, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("auth emulator %s: %w", method, err)
	}
	url := fmt.Sprintf("http://%s/identitytoolkit.googleapis.com/v1/%s?key=%s", e.Host, method, APIKey)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("auth emulator %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(method, "projects/") {
		req.Header.Set("Authorization", "Bearer owner")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("auth emulator %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("auth emulator %s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("auth emulator %s: %s: %s", method, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("auth emulator %s: decoding %s: %w", method, data, err)
		}
	}
	return nil
}

// SignUp creates an email/password account (accounts:signUp) and returns
// it with its first ID token.
func (e *Emulator) SignUp(t testing.TB, email, password string) User {
	t.Helper()
	u, err := e.SignUpContext(context.Background(), email, password)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// SignUpContext is SignUp for code that is not a test.
func (e *Emulator) SignUpContext(ctx context.Context, email, password string) (User, error) {
	var out struct {
		LocalID string `json:"localId"`
		IDToken string `json:"idToken"`
	}
	if err := e.post(ctx, "accounts:signUp", map[string]any{
		"email": email, "password": password, "returnSecureToken": true,
	}, &out); err != nil {
		return User{}, err
	}
	return User{UID: out.LocalID, Email: email, Password: password, IDToken: out.IDToken}, nil
}

// SignIn returns a fresh ID token for u (accounts:signInWithPassword); it
// carries the custom claims set so far.
func (e *Emulator) SignIn(t testing.TB, u User) string {
	t.Helper()
	var out struct {
		IDToken string `json:"idToken"`
	}
	e.call(t, "accounts:signInWithPassword", map[string]any{
		"email": u.Email, "password": u.Password, "returnSecureToken": true,
	}, &out)
	return out.IDToken
}

// SetClaims sets the custom claims of uid (accounts:update customAttributes).
func (e *Emulator) SetClaims(t testing.TB, uid string, claims map[string]any) {
	t.Helper()
	attrs, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	e.call(t, "projects/"+e.ProjectID+"/accounts:update", map[string]any{
		"localId": uid, "customAttributes": string(attrs),
	}, nil)
}

// Disable disables uid (accounts:update disableUser).
func (e *Emulator) Disable(t testing.TB, uid string) {
	t.Helper()
	e.call(t, "projects/"+e.ProjectID+"/accounts:update", map[string]any{
		"localId": uid, "disableUser": true,
	}, nil)
}

// Delete deletes uid (accounts:delete).
func (e *Emulator) Delete(t testing.TB, uid string) {
	t.Helper()
	e.call(t, "projects/"+e.ProjectID+"/accounts:delete", map[string]any{"localId": uid}, nil)
}

// Revoke revokes the refresh tokens of uid with the Admin SDK
// (RevokeRefreshTokens), which also invalidates its ID tokens issued before
// now. Revocation has a resolution of one second (tokens issued in the
// second of the revocation stay valid), so Revoke first waits for the next
// second. It sets FIREBASE_AUTH_EMULATOR_HOST for the test, so the test
// must not be parallel.
func (e *Emulator) Revoke(t testing.TB, uid string) {
	t.Helper()
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	t.Setenv(EmulatorHostEnv, e.Host)
	ctx := context.Background()
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: e.ProjectID})
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.RevokeRefreshTokens(ctx, uid); err != nil {
		t.Fatalf("revoking %s: %v", uid, err)
	}
}

// Claims returns the claims of an ID token of project for uid, issued at
// iat and expiring at exp, as the emulator would issue them.
func Claims(project, uid string, iat, exp time.Time) map[string]any {
	return map[string]any{
		"iss":       "https://securetoken.google.com/" + project,
		"aud":       project,
		"sub":       uid,
		"user_id":   uid,
		"auth_time": iat.Unix(),
		"iat":       iat.Unix(),
		"exp":       exp.Unix(),
		"firebase":  map[string]any{"sign_in_provider": "password", "identities": map[string]any{}},
	}
}

// Token hand-builds a JWT with the given header and claims and the literal
// signature sig (base64url-encoded as is): unsigned ("none") tokens like the
// emulator's, or forged RS256 ones.
func Token(t testing.TB, header, claims map[string]any, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte(sig))
}

// FakeServiceAccount writes a service-account key file that parses but is
// known to no one, so that production mode can be built offline.
func FakeServiceAccount(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     ProjectID,
		"private_key_id": "fake",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "fake@" + ProjectID + ".iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      "https://oauth2.googleapis.com/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
