package logging_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mymonit/mymonit/pkg/logging"
)

func TestIsSensitiveKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"password", true},
		{"PASSWORD", true},
		{"db_password", true},
		{"dbPassword", true},
		{"passwd", true},
		{"pwd", true},
		{"passwords", true},
		{"secret", true},
		{"client_secret", true},
		{"token", true},
		{"id_token", true},
		{"access_token", true},
		{"refresh_token", true},
		{"refreshToken", true},
		{"x-auth-token", true},
		{"authorization", true},
		{"Proxy-Authorization", true},
		{"http.request.headers.authorization", true},
		{"cookie", true},
		{"set-cookie", true},
		{"Cookies", true},
		{"email", true},
		{"e-mail", true},
		{"user_email", true},
		{"dsn", true},
		{"mysql.dsn", true},
		{"api_key", true},
		{"apikey", true},
		{"apiKey", true},
		{"x-api-key", true},
		{"credential", true},
		{"credentials", true},
		{"private_key", true},
		{"secret_access_key", true},
		{"user.name", true},
		{"user.full_name", true},
		{"user.email", true},
		{"client.user.name", true},
		{"user.target.name", true},
		{"full_name", true},
		{"username", true},

		{"", false},
		{"user.id", false},
		{"user.roles", false},
		{"name", false},
		{"experiment.name", false},
		{"service.name", false},
		{"log.logger", false},
		{"sensor", false},
		{"rows", false},
		{"tokenizer", false},
		{"key", false},
		{"routing_key", false},
		{"message", false},
		{"host", false},
		{"password.length", false},
	}
	for _, tt := range tests {
		if got := logging.IsSensitiveKey(tt.key); got != tt.want {
			t.Errorf("IsSensitiveKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"nothing to see here", "nothing to see here"},
		{"stored 1000 rows in 12ms", "stored 1000 rows in 12ms"},
		{"mail alice@example.org now", "mail [REDACTED] now"},
		{"<First.Last+tag@sub.example.co.uk>", "<[REDACTED]>"},
		{"amqp://guest:guest@rabbit:5672/", "amqp://guest:***@rabbit:5672/"},
		{"amqp://guest:p@ss@rabbit:5672/", "amqp://guest:***@rabbit:5672/"},
		{"redis://:pw@cache:6379", "redis://:***@cache:6379"},
		{"https://alice@example.org/x", "https://[REDACTED]/x"},
		{"http://host:8080/path?q=1", "http://host:8080/path?q=1"},
		{"root:pw@tcp(db:3306)/mymonit?parseTime=true", "root:***@tcp(db:3306)/mymonit?parseTime=true"},
		{"dial app:p@ss@unix(/run/my.sock)/db: refused", "dial app:***@unix(/run/my.sock)/db: refused"},
		{"root:pw@/mymonit", "root:***@/mymonit"},
		{"Error 1045: Access denied for user 'root'@'localhost'", "Error 1045: Access denied for user 'root'@'localhost'"},
		{"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x end", "token [REDACTED] end"},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", "[REDACTED]"},
		{"Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"},
		{"authorization: bearer abc==", "authorization: bearer [REDACTED]"},
		{"GET /cb?code=1&access_token=abc&state=s", "GET /cb?code=1&access_token=[REDACTED]&state=s"},
		{"host=pg password=secret sslmode=disable", "host=pg password=[REDACTED] sslmode=disable"},
		{`password="two words" next`, `password="[REDACTED]" next`},
		{`token='' x`, `token='[REDACTED]' x`},
		{"dsn=root:pw@tcp(db)/x", "dsn=[REDACTED]"},
		{"a=b c=d", "a=b c=d"},
	}
	for _, tt := range tests {
		if got := logging.Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzScrub checks that Scrub is idempotent and that no surrounding text
// lets a secret of each kind survive.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{"", " ", "x", "@", "=", "a:b@", "eyJ", "Bearer", "(", "/", "mailto:", "a.b", "token=", "://", "a://b:", "x@y.", `"`} {
		f.Add(s, s)
	}
	secrets := []struct{ text, core string }{
		{"zed.secret@example.org", "zed.secret@example.org"},
		{"amqp://u:fuzz-pass-9@host/", "fuzz-pass-9"},
		{"root:fuzz-dsn-9@tcp(db:3306)/x", "fuzz-dsn-9"},
		{"eyJhbGciOiJIUzI1NiJ9.eyJmdXp6Ijo5fQ.fuzz-sig-9", "eyJmdXp6Ijo5fQ"},
		{"Bearer fuzz-bearer-9", "fuzz-bearer-9"},
		{"access_token=fuzz-kv-9", "fuzz-kv-9"},
	}
	f.Fuzz(func(t *testing.T, before, after string) {
		for _, secret := range secrets {
			if strings.Contains(before+after, secret.core) {
				continue
			}
			in := before + " " + secret.text + " " + after
			out := logging.Scrub(in)
			if strings.Contains(out, secret.core) {
				t.Fatalf("Scrub(%q) = %q keeps %q", in, out, secret.core)
			}
			if again := logging.Scrub(out); again != out {
				t.Fatalf("Scrub is not idempotent on %q: %q then %q", in, out, again)
			}
		}
	})
}

func TestSensitiveTypesPrintRedacted(t *testing.T) {
	s, e := logging.Secret("s-value"), logging.Email("e-value")
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, e))
	}
	outputs = append(outputs, fmt.Sprint(s, e), fmt.Sprintf("%v", []any{s, &e}), fmt.Sprintf("%+v", struct{ S logging.Secret }{s}))
	for _, v := range []any{s, e, map[string]any{"s": s}, []logging.Email{e}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		outputs = append(outputs, string(b))
	}
	if b, err := s.MarshalText(); err != nil || string(b) != logging.Redacted {
		t.Errorf("Secret.MarshalText() = %q, %v", b, err)
	}
	for _, out := range outputs {
		if strings.Contains(out, "s-value") || strings.Contains(out, "e-value") ||
			strings.Contains(out, "732d76616c7565") || strings.Contains(out, "652D76616C7565") {
			t.Errorf("formatted output leaks the value: %q", out)
		}
	}
	if got := fmt.Sprintf("%v|%s", s, e); got != "[REDACTED]|[REDACTED]" {
		t.Errorf("Sprintf = %q", got)
	}
}
