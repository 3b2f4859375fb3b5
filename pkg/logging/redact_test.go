package logging_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mymonit/mymonit/pkg/logging"
)

// Sensitive by type, with a value receiver.
type sessionState struct{ Blob string }

func (sessionState) Sensitive() {}

// Sensitive by type, with a pointer receiver.
type vaultRef struct{ Path string }

func (*vaultRef) Sensitive() {}

// A sensitive ObjectMarshaler and ArrayMarshaler.
type signingKey struct{ material string }

func (signingKey) Sensitive() {}
func (k signingKey) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("material", k.material)
	return nil
}

type recoveryCodes []string

func (recoveryCodes) Sensitive() {}
func (c recoveryCodes) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range c {
		enc.AppendString(s)
	}
	return nil
}

// A sensitive error.
type authError struct{ detail string }

func (e authError) Error() string { return "auth: " + e.detail }
func (authError) Sensitive()      {}

// objectFunc adapts a function to zapcore.ObjectMarshaler.
type objectFunc func(zapcore.ObjectEncoder) error

func (f objectFunc) MarshalLogObject(enc zapcore.ObjectEncoder) error { return f(enc) }

// stringerFunc adapts a function to fmt.Stringer.
type stringerFunc func() string

func (f stringerFunc) String() string { return f() }

// A json.Marshaler whose output has sensitive keys.
type oauthResponse struct{}

func (oauthResponse) MarshalJSON() ([]byte, error) {
	return []byte(`{"access_token":"jm-access-1","expires_in":3600,"scope":"openid-scope"}`), nil
}

type account struct {
	ID       string `json:"id"`
	Password string `json:"password"`
	Contact  logging.Email
	Key      logging.Secret `json:"key"`
	Bio      string         `json:"bio"`
	Vault    vaultRef       `json:"vault"`
	Inner    *profile       `json:"inner"`
	Skipped  string         `json:"-"`
	profile
}

type profile struct {
	APIKey   string `json:"api_key"`
	Nickname string `json:"nickname"`
}

const jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1aWQtand0LTEiLCJlbWFpbCI6Imp3dEBleC5vcmcifQ.c2lnbmF0dXJlLWp3dC0x"

func TestRedaction(t *testing.T) {
	tests := []struct {
		name    string
		log     func(*zap.Logger)
		secrets []string // must appear in neither output
		keep    []string // must appear in both
	}{
		// By type.
		{
			name: "Secret through zap.Any, zap.Stringer, zap.Reflect",
			log: func(l *zap.Logger) {
				l.Info("m", zap.Any("a", logging.Secret("sek-any-1")), zap.Stringer("b", logging.Secret("sek-str-1")), zap.Reflect("c", logging.Secret("sek-refl-1")))
			},
			secrets: []string{"sek-any-1", "sek-str-1", "sek-refl-1"},
			keep:    []string{`"a":"[REDACTED]"`, `"b":"[REDACTED]"`, `"c":"[REDACTED]"`},
		},
		{
			name: "Email and helpers",
			log: func(l *zap.Logger) {
				l.Info("m", zap.Any("contact", logging.Email("alice-at-wonderland")), logging.SecretField("setting", "helper-secret-1"), logging.EmailField("who", "helper-email-1"))
			},
			secrets: []string{"alice-at-wonderland", "helper-secret-1", "helper-email-1"},
			keep:    []string{`"contact":"[REDACTED]"`, `"setting":"[REDACTED]"`},
		},
		{
			name: "Sensitive structs, pointer receivers, marshalers, errors",
			log: func(l *zap.Logger) {
				l.Info("m",
					zap.Any("state", sessionState{Blob: "session-blob-1"}),
					zap.Any("ref", &vaultRef{Path: "vault-path-1"}),
					zap.Object("key", signingKey{material: "key-material-1"}),
					zap.Array("codes", recoveryCodes{"recovery-code-1"}),
					zap.Error(authError{detail: "auth-detail-1"}),
					zap.Any("refs", []vaultRef{{Path: "vault-path-2"}}),
				)
			},
			secrets: []string{"session-blob-1", "vault-path-1", "key-material-1", "recovery-code-1", "auth-detail-1", "vault-path-2"},
			keep:    []string{`"state":"[REDACTED]"`, `"error":{"message":"[REDACTED]"`},
		},
		{
			name: "Sensitive values inside reflected maps, slices, structs",
			log: func(l *zap.Logger) {
				l.Info("m",
					zap.Any("emails", []logging.Email{"list-mail-1"}),
					zap.Any("byName", map[string]logging.Secret{"primary": "map-secret-1"}),
					zap.Any("nested", map[string]any{"list": []any{sessionState{Blob: "deep-blob-1"}, "visible-item"}}),
				)
			},
			secrets: []string{"list-mail-1", "map-secret-1", "deep-blob-1"},
			keep:    []string{"primary", "visible-item"},
		},
		{
			name: "fmt cannot leak Secret or Email",
			log: func(l *zap.Logger) {
				s, e := logging.Secret("fmt-secret-1"), logging.Email("fmt-email-1")
				l.Info(fmt.Sprintf("%v %s %d %x %q %#v %+v %v", s, s, s, s, s, s, s, e))
				l.Sugar().Infof("sugar %s %v %x", s, e, []logging.Secret{s})
				l.Info(fmt.Sprint(struct{ S logging.Secret }{s}))
			},
			secrets: []string{"fmt-secret-1", "fmt-email-1", "666d742d7365637265742d31"},
			keep:    []string{"sugar"},
		},

		// By key.
		{
			name: "key names at the top level",
			log: func(l *zap.Logger) {
				l.Info("m",
					zap.String("password", "k-password"), zap.String("Password", "k-Password"),
					zap.String("db_password", "k-db-password"), zap.String("passwd", "k-passwd"), zap.String("pwd", "k-pwd"),
					zap.String("client_secret", "k-client-secret"), zap.String("token", "k-token"),
					zap.String("access_token", "k-access-token"), zap.String("id_token", "k-id-token"),
					zap.String("refreshToken", "k-refresh-token"), zap.String("Authorization", "k-authorization"),
					zap.String("cookie", "k-cookie"), zap.String("Set-Cookie", "k-set-cookie"),
					zap.String("email", "k-email"), zap.String("e-mail", "k-e-mail"), zap.String("dsn", "k-dsn"),
					zap.String("api_key", "k-api-key"), zap.String("apiKey", "k-apikey"), zap.String("X-Api-Key", "k-x-api-key"),
					zap.String("credentials", "k-credentials"), zap.String("private_key", "k-private-key"),
					zap.String("user.name", "k-user-name"), zap.String("user.full_name", "k-user-full-name"),
					zap.String("user.email", "k-user-email"), zap.String("user.id", "k-user-id-visible"),
					zap.String("experiment.name", "k-experiment-visible"),
				)
			},
			secrets: []string{
				"k-password", "k-Password", "k-db-password", "k-passwd", "k-pwd", "k-client-secret", "k-token",
				"k-access-token", "k-id-token", "k-refresh-token", "k-authorization", "k-cookie", "k-set-cookie",
				"k-email", "k-e-mail", "k-dsn", "k-api-key", "k-apikey", "k-x-api-key", "k-credentials",
				"k-private-key", "k-user-name", "k-user-full-name", "k-user-email",
			},
			keep: []string{"k-user-id-visible", "k-experiment-visible", `"password":"[REDACTED]"`, `"user.name":"[REDACTED]"`},
		},
		{
			name: "non-string values under sensitive keys",
			log: func(l *zap.Logger) {
				l.Info("m", zap.Int64("pin_token", 4242424242), zap.Binary("private_key", []byte("binary-key-1")),
					zap.Strings("tokens", []string{"plural-token-1"}), zap.Any("secret", map[string]int{"inner-visible": 1}),
					zap.Duration("password_age", time.Hour), zap.Int("rows", 7))
			},
			secrets: []string{"4242424242", "YmluYXJ5LWtleS0x", "plural-token-1", "inner-visible"},
			keep:    []string{`"rows":7`, `"password_age":3600000000000`},
		},
		{
			name: "fields added with With",
			log: func(l *zap.Logger) {
				l = l.With(zap.String("token", "with-token-1"), zap.Any("headers", http.Header{"Authorization": {"with-auth-1"}}))
				l.Named("sub").With(zap.String("trace.id", "trace-visible")).Info("m", zap.String("password", "with-pw-1"))
				l.Warn("again")
			},
			secrets: []string{"with-token-1", "with-auth-1", "with-pw-1"},
			keep:    []string{"trace-visible", `"message":"again"`},
		},
		{
			name: "namespaces from With and from fields",
			log: func(l *zap.Logger) {
				l.With(zap.Namespace("user")).Info("m", zap.String("name", "ns-user-name"), zap.String("id", "ns-user-id-visible"))
				l.Info("m", zap.Namespace("credentials"), zap.String("login", "ns-cred-login"), zap.Int("n", 31337))
				l.Info("m", zap.Namespace("http"), zap.Namespace("request"), zap.String("authorization", "ns-http-auth"), zap.String("method", "GET-visible"))
			},
			secrets: []string{"ns-user-name", "ns-cred-login", "31337", "ns-http-auth"},
			keep:    []string{"ns-user-id-visible", "GET-visible"},
		},
		{
			name: "nested zap.Object, zap.Dict, zap.Inline, arrays of objects",
			log: func(l *zap.Logger) {
				db := objectFunc(func(enc zapcore.ObjectEncoder) error {
					enc.AddString("host", "db-host-visible")
					enc.AddString("password", "obj-password-1")
					enc.AddByteString("dsn", []byte("obj-dsn-1"))
					_ = enc.AddObject("user", objectFunc(func(enc zapcore.ObjectEncoder) error {
						enc.AddString("name", "obj-user-name")
						enc.AddString("id", "obj-user-id-visible")
						return nil
					}))
					enc.OpenNamespace("secret")
					enc.AddString("value", "obj-ns-secret")
					return nil
				})
				l.Info("m",
					zap.Object("db", db),
					zap.Dict("user", zap.String("full_name", "dict-full-name"), zap.String("name", "dict-user-name"), zap.String("role", "dict-role-visible")),
					zap.Dict("auth", zap.Dict("oauth", zap.String("refresh_token", "dict-refresh-1"))),
					zap.Inline(objectFunc(func(enc zapcore.ObjectEncoder) error {
						enc.AddString("inline_token", "inline-token-1")
						enc.AddString("inline_visible", "inline-visible")
						return nil
					})),
					zap.Objects("members", []objectFunc{func(enc zapcore.ObjectEncoder) error {
						enc.AddString("email", "member-email-1")
						return enc.AddReflected("headers", map[string]string{"Cookie": "member-cookie-1", "Accept": "member-accept-visible"})
					}}),
				)
			},
			secrets: []string{"obj-password-1", "obj-dsn-1", "obj-user-name", "obj-ns-secret", "dict-full-name", "dict-user-name", "dict-refresh-1", "inline-token-1", "member-email-1", "member-cookie-1"},
			keep:    []string{"db-host-visible", "obj-user-id-visible", "dict-role-visible", "inline-visible", "member-accept-visible"},
		},
		{
			name: "maps and structs through zap.Any",
			log: func(l *zap.Logger) {
				l.Info("m",
					zap.Any("headers", http.Header{"Authorization": {"map-auth-1"}, "Cookie": {"map-cookie-1"}, "Accept": {"map-accept-visible"}}),
					zap.Any("cfg", map[string]any{"db": map[string]any{"dsn": "map-dsn-1", "host": "map-host-visible"}, "user": map[string]string{"name": "map-user-name", "id": "map-user-id-visible"}}),
					zap.Any("account", account{
						ID: "acct-id-visible", Password: "acct-password-1", Contact: "acct-contact-1", Key: "acct-key-1",
						Bio: "mail me at acct.bio@example.org", Vault: vaultRef{Path: "acct-vault-1"},
						Inner: &profile{APIKey: "acct-inner-api-1", Nickname: "acct-nick-visible"}, Skipped: "acct-skipped-1",
						profile: profile{APIKey: "acct-embedded-api-1"},
					}),
					zap.Any("oauth", oauthResponse{}),
				)
			},
			secrets: []string{"map-auth-1", "map-cookie-1", "map-dsn-1", "map-user-name", "acct-password-1", "acct-contact-1", "acct-key-1", "acct.bio@example.org", "acct-vault-1", "acct-inner-api-1", "acct-skipped-1", "acct-embedded-api-1", "jm-access-1"},
			keep:    []string{"map-accept-visible", "map-host-visible", "map-user-id-visible", "acct-id-visible", "acct-nick-visible", "openid-scope", `"expires_in":3600`},
		},

		// By content.
		{
			name: "secrets inside string values",
			log: func(l *zap.Logger) {
				l.Info("m",
					zap.String("note", "contact bob.smith@example.com please"),
					zap.String("url", "amqp://guest:url-pass-1@rabbit.local:5672/vhost"),
					zap.String("redis", "redis://:url-pass-2@cache.local:6379/0"),
					zap.String("mysql", "root:dsn-pass-1@tcp(db.local:3306)/mymonit?parseTime=true"),
					zap.String("socket", "app:dsn-p@ss-2@unix(/run/mysqld.sock)/mymonit"),
					zap.String("id", "jwt "+jwt+" end"),
					zap.String("hdr", "Bearer opaque-bearer-tok-1"),
					zap.String("callback", "https://app.example/cb?code=x&access_token=qs-tok-1&state=qs-state-visible"),
					zap.String("libpq", "host=pg.local password=kv-pass-1 sslmode=disable"),
				)
			},
			secrets: []string{"bob.smith@example.com", "url-pass-1", "url-pass-2", "dsn-pass-1", "dsn-p@ss-2", "ss-2@unix", jwt[37:], "opaque-bearer-tok-1", "qs-tok-1", "kv-pass-1"},
			keep:    []string{"contact", "please", "amqp://guest:***@rabbit.local:5672/vhost", "root:***@tcp(db.local:3306)/mymonit", "jwt [REDACTED] end", "Bearer [REDACTED]", "qs-state-visible", "host=pg.local"},
		},
		{
			name: "secrets in the message, errors, stringers, byte strings, arrays",
			log: func(l *zap.Logger) {
				l.Info("login alice@example.org via amqp://u:msg-pass-1@h.local/ with Bearer msg-bearer-1 and " + jwt)
				l.Error("connect", zap.Error(fmt.Errorf("dial root:err-pass-1@tcp(db:3306)/x: %w", errors.New("refused"))))
				l.Warn("m",
					zap.Errors("errs", []error{errors.New("no user err.mail@example.org")}),
					zap.Stringer("target", stringerFunc(func() string { return "https://u:str-pass-1@h.local/" })),
					zap.ByteString("raw", []byte("token "+jwt)),
					zap.Strings("cc", []string{"cc.one@example.org", "cc-visible"}),
				)
				l.Sugar().Infow("sugar", "password", "sugar-pw-1", "note", "sugar.mail@example.org")
				l.Sugar().Errorf("retry with token=sugar-tok-1 for %s", "sugarf.mail@example.org")
			},
			secrets: []string{"alice@example.org", "msg-pass-1", "msg-bearer-1", jwt[37:], "err-pass-1", "err.mail@example.org", "str-pass-1", "cc.one@example.org", "sugar-pw-1", "sugar.mail@example.org", "sugar-tok-1", "sugarf.mail@example.org"},
			keep:    []string{"h.local", "cc-visible", "refused", `"type":"*fmt.wrapError"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startLineServer(t, "127.0.0.1:0")
			var out safeBuffer
			l := newLogging(t, logging.Options{Stdout: &out, LogstashAddr: srv.Addr()})
			tt.log(l.Logger())
			l.Logger().Info("case-done")
			srv.WaitFor(t, `"message":"case-done"`, hangGuard)

			for sink, raw := range map[string][]byte{"logstash": srv.Raw(), "stdout": out.Bytes()} {
				jsonLines(t, raw) // redaction keeps every line valid JSON
				for _, s := range tt.secrets {
					if bytes.Contains(raw, []byte(s)) {
						t.Errorf("%s received sensitive %q:\n%s", sink, s, raw)
					}
				}
				for _, s := range tt.keep {
					if !bytes.Contains(raw, []byte(s)) {
						t.Errorf("%s lacks %q:\n%s", sink, s, raw)
					}
				}
			}
		})
	}
}

// TestRedactingCoreWith checks that With on the wrapper redacts, keeps the
// namespace state, and leaves the parent logger unchanged.
func TestRedactingCoreWith(t *testing.T) {
	var out safeBuffer
	enc := zapcore.NewJSONEncoder(logging.EncoderConfig())
	core := logging.NewRedactingCore(zapcore.NewCore(enc, zapcore.AddSync(&out), zapcore.DebugLevel))
	parent := zap.New(core)
	child := parent.With(zap.Namespace("user"), zap.String("email", "w-mail-1"))
	child.Info("child", zap.String("name", "w-name-1"), zap.String("id", "w-id"))
	parent.Info("parent", zap.String("name", "parent-name-visible"))

	lines := jsonLines(t, out.Bytes())
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	want := map[string]any{"email": logging.Redacted, "name": logging.Redacted, "id": "w-id"}
	got, _ := lines[0]["user"].(map[string]any)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("child user.%s = %v, want %v", k, got[k], v)
		}
	}
	if lines[1]["name"] != "parent-name-visible" {
		t.Errorf("parent line: name = %v; the child's namespace leaked into the parent", lines[1]["name"])
	}
	if !core.Enabled(zapcore.DebugLevel) || zapcore.LevelOf(core) != zapcore.DebugLevel {
		t.Errorf("the wrapper hides the inner core's level")
	}
}
