package config_test

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/pkg/config"
)

// env returns a lookup over a fixed environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// noFiles is a readFile for tests that must not read files.
func noFiles(name string) ([]byte, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// errLines splits a joined error into its lines ("" for nil).
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

type kinds struct {
	S   string        `env:"T_S" default:"def"`
	B   bool          `env:"T_B" default:"true"`
	I   int           `env:"T_I" default:"-7"`
	I8  int8          `env:"T_I8"`
	I64 int64         `env:"T_I64" default:"9000000000"`
	U   uint          `env:"T_U" default:"7"`
	U16 uint16        `env:"T_U16"`
	U64 uint64        `env:"T_U64"`
	F32 float32       `env:"T_F32"`
	F   float64       `env:"T_F" default:"0.5"`
	D   time.Duration `env:"T_D" default:"1m30s"`
	L   []string      `env:"T_L" default:"a, b"`
	Lvl slog.Level    `env:"T_LVL" default:"INFO"`
	IP  netip.Addr    `env:"T_IP"`
}

func defaultKinds() kinds {
	return kinds{
		S: "def", B: true, I: -7, I64: 9000000000, U: 7, F: 0.5,
		D: 90 * time.Second, L: []string{"a", "b"}, Lvl: slog.LevelInfo,
	}
}

func TestLoadKinds(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		edit func(*kinds)
	}{
		{"defaults", nil, func(*kinds) {}},
		{"empty means unset", map[string]string{"T_S": "", "T_I": "", "T_L": ""}, func(*kinds) {}},
		{"string", map[string]string{"T_S": " spaced value "}, func(k *kinds) { k.S = " spaced value " }},
		{"bool false", map[string]string{"T_B": "false"}, func(k *kinds) { k.B = false }},
		{"bool 0", map[string]string{"T_B": "0"}, func(k *kinds) { k.B = false }},
		{"int", map[string]string{"T_I": "42"}, func(k *kinds) { k.I = 42 }},
		{"int8 bounds", map[string]string{"T_I8": "-128"}, func(k *kinds) { k.I8 = -128 }},
		{"int64", map[string]string{"T_I64": "-9223372036854775808"}, func(k *kinds) { k.I64 = -1 << 63 }},
		{"uint", map[string]string{"T_U": "0"}, func(k *kinds) { k.U = 0 }},
		{"uint16", map[string]string{"T_U16": "65535"}, func(k *kinds) { k.U16 = 65535 }},
		{"uint64", map[string]string{"T_U64": "18446744073709551615"}, func(k *kinds) { k.U64 = 1<<64 - 1 }},
		{"float32", map[string]string{"T_F32": "1.5"}, func(k *kinds) { k.F32 = 1.5 }},
		{"float64", map[string]string{"T_F": "-2.5e3"}, func(k *kinds) { k.F = -2500 }},
		{"duration", map[string]string{"T_D": "250ms"}, func(k *kinds) { k.D = 250 * time.Millisecond }},
		{"list trimmed, empty items dropped", map[string]string{"T_L": " x ,, y,z ,"}, func(k *kinds) { k.L = []string{"x", "y", "z"} }},
		{"list of only commas", map[string]string{"T_L": " , "}, func(k *kinds) { k.L = []string{} }},
		{"text unmarshaler", map[string]string{"T_LVL": "debug"}, func(k *kinds) { k.Lvl = slog.LevelDebug }},
		{"text unmarshaler without default", map[string]string{"T_IP": "10.0.0.1"}, func(k *kinds) { k.IP = netip.MustParseAddr("10.0.0.1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got kinds
			if err := config.LoadFrom(env(tt.env), noFiles, &got); err != nil {
				t.Fatalf("LoadFrom: %v", err)
			}
			want := defaultKinds()
			tt.edit(&want)
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("loaded config differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadOverwritesPriorValues(t *testing.T) {
	got := kinds{S: "stale", I8: 5}
	if err := config.LoadFrom(env(nil), noFiles, &got); err != nil {
		t.Fatal(err)
	}
	if got.S != "def" || got.I8 != 0 {
		t.Errorf("got S=%q I8=%d, want the default and zero", got.S, got.I8)
	}
}

type rules struct {
	Batch   int           `env:"R_BATCH" default:"1000" min:"1" max:"100000" help:"measures per database transaction"`
	Ratio   float64       `env:"R_RATIO" default:"0.5" min:"0" max:"1"`
	Workers uint8         `env:"R_WORKERS" default:"2" min:"1"`
	Flush   time.Duration `env:"R_FLUSH" default:"200ms" min:"1ms" max:"1m"`
	Type    string        `env:"R_TYPE" default:"quorum" oneof:"quorum classic"`
	Brokers []string      `env:"R_BROKERS" default:"a" min:"1" max:"2" oneof:"a b c"`
	DSN     string        `env:"R_DSN" required:"true" help:"MySQL DSN"`
	Token   string        `env:"R_TOKEN" secret:"true"`
	PIN     int           `env:"R_PIN" secret:"true" min:"1000"`
	On      bool          `env:"R_ON"`
	Small   int8          `env:"R_SMALL"`
	Count   uint          `env:"R_COUNT"`
	URL     string        `env:"R_URL" oneof:"x y"`
}

func TestLoadErrors(t *testing.T) {
	ok := map[string]string{"R_DSN": "root@tcp(db)/m"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"valid", with(), nil},
		{"valid bounds inclusive", with("R_BATCH", "1", "R_RATIO", "1", "R_FLUSH", "1m", "R_BROKERS", "b,c"), nil},
		{"required missing", map[string]string{}, []string{"R_DSN is required (MySQL DSN)"}},
		{"required empty", map[string]string{"R_DSN": ""}, []string{"R_DSN is required (MySQL DSN)"}},
		{"not an integer", with("R_BATCH", "abc"), []string{`R_BATCH="abc": not an integer`}},
		{"below min", with("R_BATCH", "0"), []string{`R_BATCH=0: must be at least 1`}},
		{"above max", with("R_BATCH", "100001"), []string{`R_BATCH=100001: must be at most 100000`}},
		{"float above max", with("R_RATIO", "1.01"), []string{`R_RATIO=1.01: must be at most 1`}},
		{"float NaN", with("R_RATIO", "NaN"), []string{`R_RATIO="NaN": not a finite number`}},
		{"float garbage", with("R_RATIO", "half"), []string{`R_RATIO="half": not a number`}},
		{"uint negative", with("R_COUNT", "-1"), []string{`R_COUNT="-1": not a non-negative integer`}},
		{"uint8 below min", with("R_WORKERS", "0"), []string{`R_WORKERS=0: must be at least 1`}},
		{"uint8 overflow", with("R_WORKERS", "256"), []string{`R_WORKERS="256": out of range for uint8`}},
		{"int8 overflow", with("R_SMALL", "128"), []string{`R_SMALL="128": out of range for int8`}},
		{"bool", with("R_ON", "yes"), []string{`R_ON="yes": not a boolean (true or false)`}},
		{"duration", with("R_FLUSH", "5"), []string{`R_FLUSH="5": not a duration (for example 250ms, 30s, 5m, 1h30m)`}},
		{"duration below min", with("R_FLUSH", "0s"), []string{`R_FLUSH=0s: must be at least 1ms`}},
		{"duration above max", with("R_FLUSH", "2m"), []string{`R_FLUSH=2m: must be at most 1m`}},
		{"oneof", with("R_TYPE", "Quorum"), []string{`R_TYPE="Quorum": must be one of quorum, classic`}},
		{"list item oneof", with("R_BROKERS", "a,d"), []string{`R_BROKERS="a,d": item "d" must be one of a, b, c`}},
		{"list too long", with("R_BROKERS", "a,b,c"), []string{`R_BROKERS="a,b,c": must list at most 2 items`}},
		{"list too short", with("R_BROKERS", " , "), []string{`R_BROKERS=" , ": must list at least 1 items`}},
		{"secret value masked", with("R_PIN", "12"), []string{`R_PIN=***: must be at least 1000`}},
		{"secret garbage masked", with("R_PIN", "hunter2"), []string{`R_PIN=***: not an integer`}},
		{"credentials in a bad value masked", with("R_URL", "amqp://u:hunter2@h/"), []string{`R_URL="amqp://u:***@h/": must be one of x, y`}},
		{"both set", with("R_TOKEN", "a", "R_TOKEN_FILE", "/run/secrets/token"), []string{"R_TOKEN and R_TOKEN_FILE are both set; set only one"}},
		{
			"all problems reported in declaration order",
			map[string]string{"R_BATCH": "0", "R_TYPE": "x", "R_ON": "maybe"},
			[]string{
				`R_BATCH=0: must be at least 1`,
				`R_TYPE="x": must be one of quorum, classic`,
				"R_DSN is required (MySQL DSN)",
				`R_ON="maybe": not a boolean (true or false)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got rules
			err := config.LoadFrom(env(tt.env), noFiles, &got)
			if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
				t.Errorf("errors differ (-want +got):\n%s", diff)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dsn := write("dsn", "root:hunter2@tcp(db)/m\n")
	crlf := write("crlf", "tok\r\n")
	inner := write("inner", "a\nb\n\n")
	empty := write("empty", "")
	pin := write("pin", "12\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name      string
		env       map[string]string
		wantDSN   string
		wantToken string
		wantErrs  []string
	}{
		{"value from file, newline trimmed", map[string]string{"R_DSN_FILE": dsn}, "root:hunter2@tcp(db)/m", "", nil},
		{"CRLF trimmed", map[string]string{"R_DSN": "x", "R_TOKEN_FILE": crlf}, "x", "tok", nil},
		{"only trailing newlines trimmed", map[string]string{"R_DSN": "x", "R_TOKEN_FILE": inner}, "x", "a\nb", nil},
		{"empty _FILE variable ignored", map[string]string{"R_DSN": "x", "R_DSN_FILE": ""}, "x", "", nil},
		{"both set", map[string]string{"R_DSN": "x", "R_DSN_FILE": dsn}, "", "", []string{"R_DSN and R_DSN_FILE are both set; set only one"}},
		{"missing file", map[string]string{"R_DSN_FILE": missing}, "", "", []string{"R_DSN_FILE=" + missing + ": open " + missing + ": no such file or directory"}},
		{"empty file for a required variable", map[string]string{"R_DSN_FILE": empty}, "", "", []string{"R_DSN is required; R_DSN_FILE=" + empty + " is empty"}},
		{"bad secret from file masked", map[string]string{"R_DSN": "x", "R_PIN_FILE": pin}, "x", "", []string{"R_PIN=*** (read from R_PIN_FILE): must be at least 1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got rules
			err := config.LoadFrom(env(tt.env), os.ReadFile, &got)
			if diff := cmp.Diff(tt.wantErrs, errLines(err)); diff != "" {
				t.Fatalf("errors differ (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if got.DSN != tt.wantDSN || got.Token != tt.wantToken {
				t.Errorf("got DSN=%q Token=%q, want %q %q", got.DSN, got.Token, tt.wantDSN, tt.wantToken)
			}
		})
	}
}

func TestLoadReadsProcessEnvironment(t *testing.T) {
	t.Setenv("R_DSN", "root@tcp(db)/m")
	t.Setenv("R_BATCH", "12")
	var got rules
	if err := config.Load(&got); err != nil {
		t.Fatal(err)
	}
	if got.DSN != "root@tcp(db)/m" || got.Batch != 12 {
		t.Errorf("got DSN=%q Batch=%d", got.DSN, got.Batch)
	}
}

// Nested structs as other packages will declare them.

type store struct {
	DSN     string `env:"N_MYSQL_DSN" required:"true" secret:"true"`
	MaxOpen int    `env:"N_MYSQL_MAX_OPEN" default:"10"`
	MaxIdle int    `env:"N_MYSQL_MAX_IDLE" default:"5"`
}

func (s store) Validate() error {
	if s.MaxIdle > s.MaxOpen {
		return errors.New("N_MYSQL_MAX_IDLE must not exceed N_MYSQL_MAX_OPEN")
	}
	return nil
}

type broker struct {
	URL      string `env:"N_AMQP_URL" default:"amqp://guest:guest@localhost:5672/"`
	Prefetch int    `env:"N_AMQP_PREFETCH" default:"2000"`
}

type Common struct {
	Service string `env:"N_SERVICE" default:"ingest"`
}

type ingest struct {
	Common       // embedded
	MySQL  store // named
	AMQP   *broker
	Batch  int `env:"N_BATCH" default:"1000"`
	hidden store
	Note   string // no tag: ignored
}

func (c *ingest) Validate() error {
	if c.AMQP.Prefetch <= c.Batch {
		return errors.New("N_AMQP_PREFETCH must exceed N_BATCH")
	}
	return nil
}

func TestLoadNested(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"valid", map[string]string{"N_MYSQL_DSN": "x"}, nil},
		{"inner Validate", map[string]string{"N_MYSQL_DSN": "x", "N_MYSQL_MAX_IDLE": "11"}, []string{"N_MYSQL_MAX_IDLE must not exceed N_MYSQL_MAX_OPEN"}},
		{"outer Validate through a pointer receiver", map[string]string{"N_MYSQL_DSN": "x", "N_BATCH": "2000"}, []string{"N_AMQP_PREFETCH must exceed N_BATCH"}},
		{
			"Validate errors aggregated, inner first",
			map[string]string{"N_MYSQL_DSN": "x", "N_MYSQL_MAX_IDLE": "11", "N_BATCH": "2000"},
			[]string{"N_MYSQL_MAX_IDLE must not exceed N_MYSQL_MAX_OPEN", "N_AMQP_PREFETCH must exceed N_BATCH"},
		},
		{
			"Validate skipped for a struct whose fields failed, siblings still checked",
			map[string]string{"N_MYSQL_MAX_IDLE": "11", "N_AMQP_PREFETCH": "x"},
			[]string{"N_MYSQL_DSN is required", `N_AMQP_PREFETCH="x": not an integer`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ingest
			err := config.LoadFrom(env(tt.env), noFiles, &got)
			if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
				t.Errorf("errors differ (-want +got):\n%s", diff)
			}
		})
	}

	var got ingest
	if err := config.LoadFrom(env(map[string]string{"N_MYSQL_DSN": "x", "N_SERVICE": "api"}), noFiles, &got); err != nil {
		t.Fatal(err)
	}
	want := ingest{
		Common: Common{Service: "api"},
		MySQL:  store{DSN: "x", MaxOpen: 10, MaxIdle: 5},
		AMQP:   &broker{URL: "amqp://guest:guest@localhost:5672/", Prefetch: 2000},
		Batch:  1000,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(ingest{})); diff != "" {
		t.Errorf("nested config differs (-want +got):\n%s", diff)
	}
}

func TestLoadProgrammingErrors(t *testing.T) {
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"nil", nil, "config: Load needs a non-nil pointer to a struct, got <nil>"},
		{"not a pointer", rules{}, "config: Load needs a non-nil pointer to a struct, got config_test.rules"},
		{"pointer to non-struct", new(int), "config: Load needs a non-nil pointer to a struct, got *int"},
		{"unsupported type", &struct {
			M map[string]string `env:"P_M"`
		}{}, "config: .M (P_M): unsupported type map[string]string"},
		{"required with default", &struct {
			S string `env:"P_S" required:"true" default:"x"`
		}{}, "config: .S (P_S): a required variable cannot have a default"},
		{"bad min", &struct {
			I int `env:"P_I" min:"one"`
		}{}, `config: .I (P_I): bound "one" does not parse: strconv.ParseInt: parsing "one": invalid syntax`},
		{"min on a string", &struct {
			S string `env:"P_S" min:"1"`
		}{}, "config: .S (P_S): min and max apply to numbers, durations and []string only"},
		{"oneof on an int", &struct {
			I int `env:"P_I" oneof:"1 2"`
		}{}, "config: .I (P_I): oneof applies to string and []string fields only"},
		{"bad bool tag", &struct {
			S string `env:"P_S" secret:"yes"`
		}{}, `config: .S (P_S): secret tag "yes" is not a boolean`},
		{"duplicate variable", &struct {
			A string `env:"P_X"`
			B struct {
				C string `env:"P_X"`
			}
		}{}, "config: .B.C (P_X): variable already declared by .A"},
		{"unexported tagged field", &struct {
			s string `env:"P_S"`
		}{}, "config: .s (P_S): env tag on an unexported field"},
		{"empty env tag", &struct {
			S string `env:""`
		}{}, "config: .S (): env tag must be a variable name"},
		{"bad default", &struct {
			I int `env:"P_I" default:"ten"`
		}{}, `P_I: default "ten": not an integer (fix the default tag of .I)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := config.LoadFrom(env(nil), noFiles, tt.dst)
			if err == nil {
				t.Fatal("LoadFrom succeeded, want an error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

type shownConfig struct {
	Password string   `env:"S_PASSWORD" secret:"true" help:"database password"`
	Unset    string   `env:"S_UNSET" secret:"true"`
	PIN      int      `env:"S_PIN" secret:"true" default:"4321"`
	AMQP     string   `env:"S_AMQP_URL" default:"amqp://guest:guest@localhost:5672/" help:"broker URL"`
	DSN      string   `env:"S_MYSQL_DSN" help:"MySQL DSN"`
	Hook     string   `env:"S_HOOK"`
	Peers    []string `env:"S_PEERS"`
	Name     string   `env:"S_NAME" default:"a b" required:"false"`
	Type     string   `env:"S_TYPE" default:"quorum" oneof:"quorum classic" help:"queue type | kind"`
	Batch    int      `env:"S_BATCH" default:"1000" min:"1" max:"100000" required:"false" help:"measures per database transaction"`
	Token    string   `env:"S_TOKEN" required:"true" secret:"true"`
}

func loadShown(t *testing.T) shownConfig {
	t.Helper()
	var c shownConfig
	err := config.LoadFrom(env(map[string]string{
		"S_PASSWORD":  "hunter2",
		"S_AMQP_URL":  "amqps://mon:hunter2@rabbit:5671/prod",
		"S_MYSQL_DSN": "mon:hunter2@tcp(db:3306)/mymonit?parseTime=true",
		"S_HOOK":      "https://hooks.example.org/x?user=ops&token=hunter2",
		"S_PEERS":     "amqp://a:hunter2@h1/, amqp://h2/",
		"S_TOKEN":     "hunter2",
	}), noFiles, &c)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFieldsMasksSecrets(t *testing.T) {
	c := loadShown(t)
	want := []config.Field{
		{Env: "S_PASSWORD", Value: "***", Help: "database password", Secret: true},
		{Env: "S_UNSET", Value: "", Secret: true},
		{Env: "S_PIN", Value: "***", Default: "***", Secret: true},
		{Env: "S_AMQP_URL", Value: "amqps://mon:***@rabbit:5671/prod", Default: "amqp://guest:***@localhost:5672/", Help: "broker URL"},
		{Env: "S_MYSQL_DSN", Value: "mon:***@tcp(db:3306)/mymonit?parseTime=true", Help: "MySQL DSN"},
		{Env: "S_HOOK", Value: "https://hooks.example.org/x?user=ops&token=***"},
		{Env: "S_PEERS", Value: "amqp://a:***@h1/,amqp://h2/"},
		{Env: "S_NAME", Value: "a b", Default: "a b"},
		{Env: "S_TYPE", Value: "quorum", Default: "quorum", Help: "queue type | kind"},
		{Env: "S_BATCH", Value: "1000", Default: "1000", Help: "measures per database transaction"},
		{Env: "S_TOKEN", Value: "***", Secret: true, Required: true},
	}
	// Both the pointer and a copy of the struct are accepted.
	for _, v := range []any{&c, c} {
		if diff := cmp.Diff(want, config.Fields(v)); diff != "" {
			t.Errorf("Fields(%T) differs (-want +got):\n%s", v, diff)
		}
	}
	if got := config.Fields(nil); got != nil {
		t.Errorf("Fields(nil) = %v, want nil", got)
	}
	if got := config.Fields((*shownConfig)(nil)); got != nil {
		t.Errorf("Fields(nil pointer) = %v, want nil", got)
	}
}

func TestDescribeMasksSecrets(t *testing.T) {
	c := loadShown(t)
	got := config.Describe(&c)
	want := map[string]string{
		"S_PASSWORD":  "***",
		"S_UNSET":     "",
		"S_PIN":       "***",
		"S_AMQP_URL":  "amqps://mon:***@rabbit:5671/prod",
		"S_MYSQL_DSN": "mon:***@tcp(db:3306)/mymonit?parseTime=true",
		"S_HOOK":      "https://hooks.example.org/x?user=ops&token=***",
		"S_PEERS":     "amqp://a:***@h1/,amqp://h2/",
		"S_NAME":      "a b",
		"S_TYPE":      "quorum",
		"S_BATCH":     "1000",
		"S_TOKEN":     "***",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Describe differs (-want +got):\n%s", diff)
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	c := loadShown(t)
	var b strings.Builder
	if err := config.Print(&b, c); err != nil {
		t.Fatal(err)
	}
	want := `S_PASSWORD=***
S_UNSET=
S_PIN=***
S_AMQP_URL=amqps://mon:***@rabbit:5671/prod
S_MYSQL_DSN=mon:***@tcp(db:3306)/mymonit?parseTime=true
S_HOOK=https://hooks.example.org/x?user=ops&token=***
S_PEERS=amqp://a:***@h1/,amqp://h2/
S_NAME="a b"
S_TYPE=quorum
S_BATCH=1000
S_TOKEN=***
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Print differs (-want +got):\n%s", diff)
	}
	if strings.Contains(b.String(), "hunter2") || strings.Contains(b.String(), "4321") {
		t.Error("Print reveals a secret")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPrintReportsWriteError(t *testing.T) {
	err := config.Print(failingWriter{}, shownConfig{})
	if err == nil || err.Error() != "config: print: disk full" {
		t.Errorf("Print error = %v, want config: print: disk full", err)
	}
}

func TestMarkdown(t *testing.T) {
	got := config.Markdown(shownConfig{})
	want := "| Variable | Default | Description | Secret |\n" +
		"|---|---|---|---|\n" +
		"| `S_PASSWORD` |  | Database password. | yes |\n" +
		"| `S_UNSET` |  |  | yes |\n" +
		"| `S_PIN` | `***` |  | yes |\n" +
		"| `S_AMQP_URL` | `amqp://guest:***@localhost:5672/` | Broker URL. |  |\n" +
		"| `S_MYSQL_DSN` |  | MySQL DSN. |  |\n" +
		"| `S_HOOK` |  |  |  |\n" +
		"| `S_PEERS` |  | Comma separated. |  |\n" +
		"| `S_NAME` | `a b` |  |  |\n" +
		"| `S_TYPE` | `quorum` | Queue type \\| kind. One of `quorum`, `classic`. |  |\n" +
		"| `S_BATCH` | `1000` | Measures per database transaction. From 1 to 100000. |  |\n" +
		"| `S_TOKEN` |  | Required. | yes |\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Markdown differs (-want +got):\n%s", diff)
	}
	if got := config.Markdown(42); got != "" {
		t.Errorf("Markdown(42) = %q, want empty", got)
	}
}

func TestMaskCredentials(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain value", "plain value"},
		{"localhost:5672", "localhost:5672"},
		{"ops@example.org", "ops@example.org"},
		{"amqp://guest:guest@localhost:5672/", "amqp://guest:***@localhost:5672/"},
		{"amqp://guest@localhost:5672/", "amqp://guest@localhost:5672/"},
		{"amqp://localhost:5672/vhost", "amqp://localhost:5672/vhost"},
		{"amqp://u:p@ss@host/", "amqp://u:***@host/"},
		{"amqp://u:p:ss@host", "amqp://u:***@host"},
		{"http://host/path?to=a@b", "http://host/path?to=a@b"},
		{"https://h/?password=x&a=1&API_KEY=y#frag", "https://h/?password=***&a=1&API_KEY=***#frag"},
		{"user:pass@tcp(127.0.0.1:3306)/db", "user:***@tcp(127.0.0.1:3306)/db"},
		{"user:p@ss/w:rd@tcp(db)/m?loc=UTC", "user:***@tcp(db)/m?loc=UTC"},
		{"user@tcp(db)/m", "user@tcp(db)/m"},
		{"root:secret@/m", "root:***@/m"},
		{"user:pass@unix(/run/mysqld.sock)/m", "user:***@unix(/run/mysqld.sock)/m"},
		{"u:p@tcp(db)/m?tls=true&pwd=z", "u:***@tcp(db)/m?tls=true&pwd=***"},
	}
	for _, tt := range tests {
		if got := config.MaskCredentials(tt.in); got != tt.want {
			t.Errorf("MaskCredentials(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Secrets set anywhere never reach any rendering.
func TestSecretsNeverShown(t *testing.T) {
	c := loadShown(t)
	var b strings.Builder
	if err := config.Print(&b, &c); err != nil {
		t.Fatal(err)
	}
	outputs := []string{b.String(), config.Markdown(&c)}
	for _, f := range config.Fields(&c) {
		outputs = append(outputs, f.Value, f.Default)
	}
	for k, v := range config.Describe(&c) {
		outputs = append(outputs, k, v)
	}
	if i := slices.IndexFunc(outputs, func(s string) bool { return strings.Contains(s, "hunter2") }); i >= 0 {
		t.Errorf("output %d reveals a secret: %q", i, outputs[i])
	}
}

// Describe renders every kind as the text Load accepts, so a printed
// configuration can be pasted back.
func TestDescribeRoundTripsEveryKind(t *testing.T) {
	vars := map[string]string{
		"T_S": "x y", "T_B": "false", "T_I": "-3", "T_I8": "8", "T_I64": "64", "T_U": "1",
		"T_U16": "16", "T_U64": "18446744073709551615", "T_F32": "0.1", "T_F": "1e-9",
		"T_D": "1h2m3.5s", "T_L": "p, q", "T_LVL": "WARN", "T_IP": "::1",
	}
	var first kinds
	if err := config.LoadFrom(env(vars), noFiles, &first); err != nil {
		t.Fatal(err)
	}
	described := config.Describe(first)
	want := map[string]string{
		"T_S": "x y", "T_B": "false", "T_I": "-3", "T_I8": "8", "T_I64": "64", "T_U": "1",
		"T_U16": "16", "T_U64": "18446744073709551615", "T_F32": "0.1", "T_F": "1e-09",
		"T_D": "1h2m3.5s", "T_L": "p,q", "T_LVL": "WARN", "T_IP": "::1",
	}
	if diff := cmp.Diff(want, described); diff != "" {
		t.Errorf("Describe differs (-want +got):\n%s", diff)
	}
	var second kinds
	if err := config.LoadFrom(env(described), noFiles, &second); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("reloading the described config differs (-first +second):\n%s", diff)
	}
}

// The renderers walk nil nested pointers as zero values without changing
// the struct.
func TestFieldsOfNilNestedPointer(t *testing.T) {
	var c ingest
	got := config.Describe(&c)
	want := map[string]string{
		"N_SERVICE": "", "N_MYSQL_DSN": "", "N_MYSQL_MAX_OPEN": "0", "N_MYSQL_MAX_IDLE": "0",
		"N_AMQP_URL": "", "N_AMQP_PREFETCH": "0", "N_BATCH": "0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Describe differs (-want +got):\n%s", diff)
	}
	if c.AMQP != nil {
		t.Error("Describe allocated a nested struct")
	}
}

type embeddedCommon struct {
	Region string `env:"E_REGION" default:"eu"`
}

type withOthers struct {
	embeddedCommon
	Logger  *slog.Logger // a pointer to a struct without variables: untouched
	Started time.Time    // a struct without variables: ignored
	Next    *withOthers  // a cycle without variables of its own is refused
}

type selfless struct {
	Logger *slog.Logger
	Nested struct{ Deep *slog.Logger }
	N      int `env:"E_N" default:"1"`
}

func TestLoadLeavesStructsWithoutVariablesAlone(t *testing.T) {
	var c selfless
	if err := config.LoadFrom(env(nil), noFiles, &c); err != nil {
		t.Fatal(err)
	}
	if c.Logger != nil || c.Nested.Deep != nil || c.N != 1 {
		t.Errorf("got %+v, want only N set", c)
	}

	var e struct{ embeddedCommon }
	if err := config.LoadFrom(env(map[string]string{"E_REGION": "us"}), noFiles, &e); err != nil {
		t.Fatal(err)
	}
	if e.Region != "us" {
		t.Errorf("embedded unexported struct: Region = %q", e.Region)
	}
}

func TestLoadRefusesCycles(t *testing.T) {
	var c withOthers
	err := config.LoadFrom(env(nil), noFiles, &c)
	want := "config: withOthers.Next: config_test.withOthers contains itself"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestEnvironRoundTripsUnmasked(t *testing.T) {
	type withSecret struct {
		kinds
		DSN   string `env:"T_DSN" secret:"true"`
		URL   string `env:"T_URL" default:"amqp://guest:guest@localhost/"`
		Off   bool   `env:"T_OFF" default:"true"`
		Empty string `env:"T_EMPTY"`
	}
	in := withSecret{kinds: defaultKinds(), DSN: "root:pw@tcp(db:3306)/x", URL: "amqp://u:p@h/", Off: false}
	in.I8, in.IP, in.D, in.L = -8, netip.MustParseAddr("10.0.0.1"), 2*time.Millisecond, []string{"x", "y z"}
	got := config.Environ(in)
	for _, want := range []string{"T_DSN=root:pw@tcp(db:3306)/x", "T_URL=amqp://u:p@h/", "T_OFF=false", "T_D=2ms", "T_L=x,y z", "T_IP=10.0.0.1"} {
		if !slices.Contains(got, want) {
			t.Errorf("Environ lacks %q: %q", want, got)
		}
	}
	for _, kv := range got {
		if strings.HasPrefix(kv, "T_EMPTY=") || strings.HasPrefix(kv, "T_U16=") {
			t.Errorf("Environ has %q: a zero value without a default is left out", kv)
		}
	}
	vars := map[string]string{}
	for _, kv := range got {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var back withSecret
	if err := config.LoadFrom(env(vars), noFiles, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, back, cmp.AllowUnexported(withSecret{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("reloading Environ differs (-in +back):\n%s", diff)
	}
}
