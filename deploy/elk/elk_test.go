package elk_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/mymonit/mymonit/deploy/elk"
	"github.com/mymonit/mymonit/pkg/logging"
)

// block is one plugin section of a Logstash configuration: its name and
// the text between its braces.
type block struct {
	name, body string
}

// pluginBlocks returns the plugin blocks directly inside the section
// (input, filter or output) of a Logstash configuration, comments removed.
func pluginBlocks(t *testing.T, conf []byte, section string) []block {
	t.Helper()
	var clean strings.Builder
	for line := range strings.SplitSeq(string(conf), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 && !strings.Contains(line[:i], `"`) {
			line = line[:i]
		}
		clean.WriteString(line + "\n")
	}
	text := clean.String()
	body, ok := braced(text, regexp.MustCompile(`(?m)^`+section+`\s*\{`))
	if !ok {
		t.Fatalf("pipeline has no %s section", section)
	}
	var blocks []block
	re := regexp.MustCompile(`(?m)^\s{2}([a-z_]+)\s*\{`)
	for _, m := range re.FindAllStringSubmatchIndex(body, -1) {
		inner, _ := braced(body[m[0]:], regexp.MustCompile(`^\s*[a-z_]+\s*\{`))
		blocks = append(blocks, block{name: body[m[2]:m[3]], body: inner})
	}
	return blocks
}

// braced returns the text inside the braces opened by the first match of
// open.
func braced(text string, open *regexp.Regexp) (string, bool) {
	loc := open.FindStringIndex(text)
	if loc == nil {
		return "", false
	}
	depth := 1
	for i := loc[1]; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return text[loc[1]:i], true
			}
		}
	}
	return "", false
}

// option returns the value of "name => value" in a plugin block, quotes
// removed.
func option(b block, name string) string {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s*=>\s*(.+?)\s*$`).FindStringSubmatch(b.body)
	if m == nil {
		return ""
	}
	return strings.Trim(m[1], `"`)
}

func TestPipelineInputsAndOutput(t *testing.T) {
	conf := elk.Pipeline()
	inputs := pluginBlocks(t, conf, "input")
	find := func(name string) block {
		t.Helper()
		for _, b := range inputs {
			if b.name == name {
				return b
			}
		}
		t.Fatalf("pipeline has no %s input; inputs: %v", name, inputs)
		return block{}
	}
	tcp := find("tcp")
	if got := option(tcp, "codec"); got != "json_lines" {
		t.Errorf("tcp input codec = %q, want json_lines (what pkg/logging's shipper writes)", got)
	}
	if got := option(tcp, "port"); got != strconv.Itoa(elk.ServicesPort) {
		t.Errorf("tcp input port = %q, want %d", got, elk.ServicesPort)
	}
	if got := option(find("beats"), "port"); got != strconv.Itoa(elk.BeatsPort) {
		t.Errorf("beats input port = %q, want %d", got, elk.BeatsPort)
	}

	outputs := pluginBlocks(t, conf, "output")
	if len(outputs) != 1 || outputs[0].name != "elasticsearch" {
		t.Fatalf("outputs = %v, want one elasticsearch output", outputs)
	}
	es := outputs[0]
	for name, want := range map[string]string{
		"index":           elk.DataStream,
		"action":          "create", // a data stream accepts only creations
		"manage_template": "false",  // elk-setup owns the template
		"ilm_enabled":     "false",
		"data_stream":     "false", // the name is ours, not logs-<dataset>-<namespace>
	} {
		if got := option(es, name); got != want {
			t.Errorf("elasticsearch output %s = %q, want %q", name, got, want)
		}
	}
	if got := option(es, "password"); !strings.HasPrefix(got, "${") {
		t.Errorf("elasticsearch output password = %q, want an environment reference", got)
	}

	// Logstash substitutes environment references even inside comments: a
	// commented ${...} would break the pipeline at start.
	for i, line := range strings.Split(string(conf), "\n") {
		if c := strings.Index(line, "#"); c >= 0 && strings.Contains(line[c:], "${") {
			t.Errorf("mymonit.conf line %d: environment reference in a comment: %s", i+1, line)
		}
	}
}

// TestLogstashAddrMatchesPipeline checks that every deployment file that
// sets MYMONIT_LOGSTASH_ADDR points at the pipeline's tcp port.
func TestLogstashAddrMatchesPipeline(t *testing.T) {
	re := regexp.MustCompile(`MYMONIT_LOGSTASH_ADDR["']?\s*[:=]\s*["']?([^"'\s]+)|logstashAddr:\s*["']?([^"'\s]+)`)
	var found []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".env"}, filepath.Ext(p)) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			addr := m[1] + m[2]
			if strings.Contains(addr, "{{") || strings.HasPrefix(addr, "$") {
				continue // a template or a variable, resolved elsewhere
			}
			found = append(found, p)
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				t.Errorf("%s: Logstash address %q: %v", p, addr, err)
				continue
			}
			if port != strconv.Itoa(elk.ServicesPort) {
				t.Errorf("%s: Logstash address %q, but the pipeline's tcp input listens on %d", p, addr, elk.ServicesPort)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(found, filepath.Join("..", "helm", "mymonit", "values.yaml")) {
		t.Errorf("no Logstash address found in the Helm values (files with one: %v)", found)
	}
}

// mappings is the part of the index template the checks read.
type mappings struct {
	DynamicTemplates []map[string]dynamicTemplate `json:"dynamic_templates"`
	Properties       map[string]property          `json:"properties"`
}

type dynamicTemplate struct {
	PathMatch        string   `json:"path_match"`
	Match            string   `json:"match"`
	MatchMappingType string   `json:"match_mapping_type"`
	Mapping          property `json:"mapping"`
}

type property struct {
	Type       string              `json:"type"`
	Properties map[string]property `json:"properties"`
}

type indexTemplate struct {
	IndexPatterns []string        `json:"index_patterns"`
	DataStream    *map[string]any `json:"data_stream"`
	Priority      int             `json:"priority"`
	Template      struct {
		Settings map[string]any `json:"settings"`
		Mappings mappings       `json:"mappings"`
	} `json:"template"`
}

func loadTemplate(t *testing.T) indexTemplate {
	t.Helper()
	var tpl indexTemplate
	dec := json.NewDecoder(bytes.NewReader(elk.Template()))
	if err := dec.Decode(&tpl); err != nil {
		t.Fatalf("index template: %v", err)
	}
	return tpl
}

// jsonType is the Elasticsearch dynamic-mapping type of a JSON value.
func jsonType(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			return "double"
		}
		return "long"
	case map[string]any:
		return "object"
	}
	return "null"
}

// resolve returns the mapping type a field path gets from the template:
// an explicit property (or a flattened parent), else the first dynamic
// template that matches, else "" (Elasticsearch's defaults).
func resolve(m mappings, fieldPath, valueType string) (typ, how string) {
	props := m.Properties
	segs := strings.Split(fieldPath, ".")
	for i, seg := range segs {
		p, ok := props[seg]
		if !ok {
			break
		}
		if p.Type == "flattened" {
			return "flattened", "explicit " + strings.Join(segs[:i+1], ".")
		}
		if i == len(segs)-1 {
			return p.Type, "explicit"
		}
		props = p.Properties
	}
	for _, named := range m.DynamicTemplates {
		for name, dt := range named {
			if dt.MatchMappingType != "" && dt.MatchMappingType != "*" && dt.MatchMappingType != valueType {
				continue
			}
			if dt.PathMatch != "" {
				if ok, _ := path.Match(dt.PathMatch, fieldPath); !ok {
					continue
				}
			}
			if dt.Match != "" {
				if ok, _ := path.Match(dt.Match, segs[len(segs)-1]); !ok {
					continue
				}
			}
			return dt.Mapping.Type, "dynamic template " + name
		}
	}
	return "", ""
}

// compatible reports whether Elasticsearch indexes a JSON value of
// valueType into a field of mapping type typ.
func compatible(valueType, typ string) bool {
	switch typ {
	case "keyword", "match_only_text", "text", "wildcard":
		return valueType != "object"
	case "date", "date_nanos", "ip":
		return valueType == "string"
	case "long", "integer", "double", "float", "scaled_float":
		return valueType == "long" || valueType == "double"
	case "boolean":
		return valueType == "boolean"
	case "flattened", "object", "":
		return true
	}
	return false
}

// leaves flattens a decoded JSON line into field paths and values, as
// Elasticsearch sees them: dotted keys and nested objects alike.
func leaves(prefix string, v any, out map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leaves(p, e, out)
		}
	case []any:
		for _, e := range v {
			leaves(prefix, e, out)
		}
	default:
		out[prefix] = v
	}
}

// sampleLines logs, through pkg/logging, the kinds of lines the services
// write, and returns them decoded.
func sampleLines(t *testing.T) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	l, err := logging.New(logging.Options{Service: "api", Version: "1.2.3", Level: "debug", Stdout: &buf,
		Fields: []zap.Field{zap.String("service.environment", "test")}})
	if err != nil {
		t.Fatal(err)
	}
	log := l.Logger().Named("httpapi")
	// A request line (services/api middleware).
	log.Info("request", zap.String("http.request.id", "r-1"), zap.String("http.request.method", "GET"),
		zap.String("http.route", "GET /v1/experiments/{id}"), zap.Int("http.response.status_code", 200),
		zap.Duration("event.duration", 1500), logging.UserID("7"), logging.TraceID("t-1"))
	// An audit event: an admin change that failed, and a data read.
	log.Info("audit membership.add", logging.Audit("membership.add", logging.OutcomeFailure), logging.UserID("1"),
		zap.String("user.roles", "admin"), zap.String("http.request.id", "r-2"),
		zap.String("mymonit.target.user_id", "9"), zap.String("mymonit.experiment", "atlas-pixel"),
		zap.Int("http.response.status_code", 404), zap.String("event.reason", "https://mymonit.dev/problems/not-found"))
	log.Info("audit measures.read", logging.Audit("measures.read", logging.OutcomeSuccess), logging.UserID("3"),
		zap.String("user.roles", "scientist"), zap.String("mymonit.experiment", "atlas-pixel"),
		zap.String("labels.experiment", "atlas-pixel"))
	// A dead letter (ingest).
	log.Warn("dead letter", logging.Event("", "measure.dead_letter", logging.OutcomeFailure),
		zap.String("event.reason", `measure 3: experiment "cms" is not registered`),
		zap.String("mymonit.dead_letter.kind", "unknown_experiment"), zap.String("mymonit.experiment", "cms"),
		zap.String("mymonit.dead_letter.routing_key", "experiment.cms"), zap.String("mymonit.dead_letter.message_id", "m-1"),
		zap.Int("mymonit.dead_letter.items", 1))
	// An error with its stack trace, queue and retry fields, a password
	// (redacted), the start-up configuration.
	log.Error("request failed", zap.Error(errors.New("boom")), zap.String("queue.name", "mymonit.ingest"),
		zap.Int("queue.prefetch", 2000), zap.Duration("backoff", 100), zap.Float64("ratio", 0.5),
		zap.Bool("retry", true), zap.String("password", "x"))
	log.Info("api started", zap.Any("config", map[string]string{"MYMONIT_LOG_LEVEL": "info", "MYMONIT_MYSQL_DSN": "***"}))
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 6 {
		t.Fatalf("got %d log lines, want 6:\n%s", len(lines), buf.String())
	}
	return lines
}

// TestTemplateCoversLoggedFields logs sample lines with pkg/logging and
// checks that every field they carry gets a mapping chosen by the template
// (never Elasticsearch's defaults), of a type that accepts the value, and
// that the fields the dashboards and auditors rely on have the expected
// types.
func TestTemplateCoversLoggedFields(t *testing.T) {
	tpl := loadTemplate(t)
	seen := map[string]string{}
	for _, line := range sampleLines(t) {
		fields := map[string]any{}
		leaves("", line, fields)
		for p, v := range fields {
			vt := jsonType(v)
			typ, how := resolve(tpl.Template.Mappings, p, vt)
			seen[p] = typ
			if how == "" {
				t.Errorf("field %s (%s) has no mapping in the template", p, vt)
				continue
			}
			if !compatible(vt, typ) {
				t.Errorf("field %s: a %s value cannot be indexed as %s (%s)", p, vt, typ, how)
			}
		}
	}
	for p, want := range map[string]string{
		"@timestamp":                     "date_nanos",
		"message":                        "match_only_text",
		"log.level":                      "keyword",
		"log.logger":                     "keyword",
		"log.origin.file.line":           "long",
		"ecs.version":                    "keyword",
		"service.name":                   "keyword",
		"service.version":                "keyword",
		"service.environment":            "keyword",
		"event.kind":                     "keyword",
		"event.category":                 "keyword",
		"event.action":                   "keyword",
		"event.outcome":                  "keyword",
		"event.reason":                   "keyword",
		"event.duration":                 "long",
		"user.id":                        "keyword",
		"user.roles":                     "keyword",
		"trace.id":                       "keyword",
		"http.request.id":                "keyword",
		"http.request.method":            "keyword",
		"http.route":                     "keyword",
		"http.response.status_code":      "long",
		"error.message":                  "match_only_text",
		"error.type":                     "keyword",
		"error.stack_trace":              "match_only_text",
		"labels.experiment":              "keyword",
		"mymonit.experiment":             "keyword",
		"mymonit.target.user_id":         "keyword",
		"mymonit.dead_letter.kind":       "keyword",
		"mymonit.dead_letter.items":      "long",
		"queue.name":                     "keyword",
		"password":                       "keyword",
		"config.MYMONIT_LOG_LEVEL":       "flattened",
		"mymonit.dead_letter.message_id": "keyword",
	} {
		got, ok := seen[p]
		if !ok {
			t.Errorf("the sample lines carry no %s: pkg/logging or the sample changed", p)
			continue
		}
		if got != want {
			t.Errorf("%s is mapped as %s, want %s", p, got, want)
		}
	}
}

func TestTemplateAndPolicy(t *testing.T) {
	tpl := loadTemplate(t)
	if tpl.DataStream == nil {
		t.Error("index template does not declare a data stream")
	}
	if !slices.ContainsFunc(tpl.IndexPatterns, func(p string) bool { ok, _ := path.Match(p, elk.DataStream); return ok }) {
		t.Errorf("index patterns %v do not match the data stream %s", tpl.IndexPatterns, elk.DataStream)
	}
	if tpl.Priority <= 100 {
		t.Errorf("priority %d: want above the built-in templates' 100", tpl.Priority)
	}
	if got := tpl.Template.Settings["index.lifecycle.name"]; got != elk.PolicyName {
		t.Errorf("index.lifecycle.name = %v, want %s", got, elk.PolicyName)
	}
	if typ, _ := resolve(tpl.Template.Mappings, "@timestamp", "string"); typ != "date_nanos" && typ != "date" {
		t.Errorf("@timestamp is %q: a data stream needs a date", typ)
	}

	var policy struct {
		Policy struct {
			Meta   map[string]any `json:"_meta"`
			Phases map[string]struct {
				MinAge  string                     `json:"min_age"`
				Actions map[string]json.RawMessage `json:"actions"`
			} `json:"phases"`
		} `json:"policy"`
	}
	dec := json.NewDecoder(bytes.NewReader(elk.Policy()))
	dec.DisallowUnknownFields() // only policy.phases and policy._meta are expected
	if err := dec.Decode(&policy); err != nil {
		t.Fatalf("lifecycle policy: %v", err)
	}
	hot, ok := policy.Policy.Phases["hot"]
	if _, roll := hot.Actions["rollover"]; !ok || !roll {
		t.Errorf("lifecycle policy has no hot phase with rollover: %+v", policy.Policy.Phases)
	}
	del, ok := policy.Policy.Phases["delete"]
	if _, d := del.Actions["delete"]; !ok || !d || !regexp.MustCompile(`^[1-9][0-9]*d$`).MatchString(del.MinAge) {
		t.Errorf("lifecycle policy has no delete phase after N days: %+v", del)
	}
}

// savedObject is one line of the Kibana import file.
type savedObject struct {
	ID                   string          `json:"id"`
	Type                 string          `json:"type"`
	Attributes           json.RawMessage `json:"attributes"`
	References           []reference     `json:"references"`
	CoreMigrationVersion string          `json:"coreMigrationVersion"`
	TypeMigrationVersion string          `json:"typeMigrationVersion"`
	Managed              bool            `json:"managed"`
}

type reference struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type panel struct {
	Type             string `json:"type"`
	PanelIndex       string `json:"panelIndex"`
	PanelRefName     string `json:"panelRefName"`
	Title            string `json:"title"`
	GridData         struct{ X, Y, W, H int }
	EmbeddableConfig struct {
		Attributes *struct {
			References []reference `json:"references"`
			State      struct {
				DatasourceStates struct {
					FormBased struct {
						Layers map[string]struct {
							Columns map[string]struct {
								SourceField   string `json:"sourceField"`
								OperationType string `json:"operationType"`
							} `json:"columns"`
						} `json:"layers"`
					} `json:"formBased"`
				} `json:"datasourceStates"`
				Query struct{ Query, Language string } `json:"query"`
			} `json:"state"`
		} `json:"attributes"`
	} `json:"embeddableConfig"`
}

// TestSavedObjects checks the Kibana import file: one JSON object a line,
// in the saved-objects format, every reference resolved inside the file,
// the JSON-in-string attributes valid, and every field a search shows or a
// visualisation aggregates mapped by the index template as aggregatable.
func TestSavedObjects(t *testing.T) {
	tpl := loadTemplate(t)
	aggregatable := func(field string) error {
		typ, how := resolve(tpl.Template.Mappings, field, "string")
		if how == "" || !strings.HasPrefix(how, "explicit") {
			return fmt.Errorf("%s is not mapped explicitly by the index template", field)
		}
		if typ != "keyword" && typ != "long" && typ != "date_nanos" {
			return fmt.Errorf("%s is %s, not aggregatable", field, typ)
		}
		return nil
	}
	shown := func(field string) error {
		if _, how := resolve(tpl.Template.Mappings, field, "string"); !strings.HasPrefix(how, "explicit") {
			return fmt.Errorf("%s is not mapped explicitly by the index template", field)
		}
		return nil
	}

	objects := map[string]savedObject{}
	var order []savedObject
	for i, line := range bytes.Split(bytes.TrimSuffix(elk.SavedObjects(), []byte("\n")), []byte("\n")) {
		var o savedObject
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("saved-objects.ndjson line %d: %v", i+1, err)
		}
		if o.ID == "" || o.Type == "" || len(o.Attributes) == 0 {
			t.Errorf("line %d: id, type and attributes are required: %s", i+1, line)
		}
		if !slices.Contains([]string{"index-pattern", "search", "dashboard", "lens"}, o.Type) {
			t.Errorf("line %d: unexpected type %q", i+1, o.Type)
		}
		if o.CoreMigrationVersion != "8.8.0" || o.TypeMigrationVersion == "" {
			t.Errorf("line %d (%s): coreMigrationVersion %q, typeMigrationVersion %q: want 8.8.0 and a type version",
				i+1, o.ID, o.CoreMigrationVersion, o.TypeMigrationVersion)
		}
		key := o.Type + "/" + o.ID
		if _, dup := objects[key]; dup {
			t.Errorf("line %d: %s appears twice", i+1, key)
		}
		objects[key] = o
		order = append(order, o)
	}
	for _, want := range []string{"index-pattern/" + elk.DataViewID, "dashboard/" + elk.DashboardID} {
		if _, ok := objects[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	// Kibana imports objects in file order only as far as references are
	// concerned: every reference must be in the file (or the import
	// reports it missing).
	for _, o := range order {
		for _, r := range o.References {
			if _, ok := objects[r.Type+"/"+r.ID]; !ok {
				t.Errorf("%s/%s references %s/%s (%s), which is not in the file", o.Type, o.ID, r.Type, r.ID, r.Name)
			}
		}
	}

	var dataView struct{ Title, TimeFieldName string }
	if err := json.Unmarshal(objects["index-pattern/"+elk.DataViewID].Attributes, &dataView); err != nil {
		t.Fatal(err)
	}
	if ok, _ := path.Match(dataView.Title, elk.DataStream); !ok || dataView.TimeFieldName != "@timestamp" {
		t.Errorf("data view %+v: want a title matching %s and @timestamp", dataView, elk.DataStream)
	}

	for _, o := range order {
		switch o.Type {
		case "search":
			var a struct {
				Title   string   `json:"title"`
				Columns []string `json:"columns"`
				Meta    struct {
					SearchSourceJSON string `json:"searchSourceJSON"`
				} `json:"kibanaSavedObjectMeta"`
			}
			if err := json.Unmarshal(o.Attributes, &a); err != nil {
				t.Fatalf("search %s: %v", o.ID, err)
			}
			var src struct {
				Query        struct{ Query, Language string }
				IndexRefName string `json:"indexRefName"`
			}
			if err := json.Unmarshal([]byte(a.Meta.SearchSourceJSON), &src); err != nil {
				t.Errorf("search %s: searchSourceJSON: %v", o.ID, err)
			}
			if src.Query.Language != "kuery" || src.Query.Query == "" {
				t.Errorf("search %s: query %+v, want a KQL query", o.ID, src.Query)
			}
			if !slices.ContainsFunc(o.References, func(r reference) bool {
				return r.Name == src.IndexRefName && r.Type == "index-pattern" && r.ID == elk.DataViewID
			}) {
				t.Errorf("search %s: index reference %q does not name the data view", o.ID, src.IndexRefName)
			}
			for _, c := range a.Columns {
				if err := shown(c); err != nil {
					t.Errorf("search %s column: %v", o.ID, err)
				}
			}
			for _, f := range queryFields(src.Query.Query) {
				if err := aggregatable(f); err != nil {
					t.Errorf("search %s query: %v", o.ID, err)
				}
			}
		case "dashboard":
			checkDashboard(t, o, aggregatable)
		}
	}
}

// queryFields returns the field names a KQL query filters on.
func queryFields(q string) []string {
	var fields []string
	for _, m := range regexp.MustCompile(`([a-z_@][a-z0-9_.@]*):`).FindAllStringSubmatch(q, -1) {
		fields = append(fields, m[1])
	}
	return fields
}

func checkDashboard(t *testing.T, o savedObject, aggregatable func(string) error) {
	t.Helper()
	var a struct {
		Title       string `json:"title"`
		PanelsJSON  string `json:"panelsJSON"`
		OptionsJSON string `json:"optionsJSON"`
		Meta        struct {
			SearchSourceJSON string `json:"searchSourceJSON"`
		} `json:"kibanaSavedObjectMeta"`
	}
	if err := json.Unmarshal(o.Attributes, &a); err != nil {
		t.Fatalf("dashboard %s: %v", o.ID, err)
	}
	for name, s := range map[string]string{"optionsJSON": a.OptionsJSON, "searchSourceJSON": a.Meta.SearchSourceJSON} {
		if !json.Valid([]byte(s)) {
			t.Errorf("dashboard %s: %s is not JSON: %s", o.ID, name, s)
		}
	}
	var panels []panel
	if err := json.Unmarshal([]byte(a.PanelsJSON), &panels); err != nil {
		t.Fatalf("dashboard %s: panelsJSON: %v", o.ID, err)
	}
	if len(panels) == 0 {
		t.Fatalf("dashboard %s has no panels", o.ID)
	}
	has := func(name, typ, id string) bool {
		return slices.ContainsFunc(o.References, func(r reference) bool {
			return r.Name == name && r.Type == typ && (id == "" || r.ID == id)
		})
	}
	kinds := map[string]int{}
	for _, p := range panels {
		kinds[p.Type]++
		if p.PanelIndex == "" || p.GridData.W == 0 || p.GridData.H == 0 {
			t.Errorf("dashboard %s: panel %q lacks panelIndex or size", o.ID, p.Title)
		}
		switch p.Type {
		case "search":
			if p.PanelRefName == "" || !has(p.PanelIndex+":"+p.PanelRefName, "search", "") {
				t.Errorf("dashboard %s: search panel %s has no reference %s:%s", o.ID, p.PanelIndex, p.PanelIndex, p.PanelRefName)
			}
		case "lens":
			at := p.EmbeddableConfig.Attributes
			if at == nil {
				t.Errorf("dashboard %s: lens panel %s has no attributes", o.ID, p.PanelIndex)
				continue
			}
			layers := at.State.DatasourceStates.FormBased.Layers
			if len(layers) == 0 {
				t.Errorf("dashboard %s: lens panel %s has no layer", o.ID, p.PanelIndex)
			}
			for id, layer := range layers {
				name := "indexpattern-datasource-layer-" + id
				if !has(p.PanelIndex+":"+name, "index-pattern", elk.DataViewID) {
					t.Errorf("dashboard %s: lens panel %s: no dashboard reference %s:%s to the data view", o.ID, p.PanelIndex, p.PanelIndex, name)
				}
				if !slices.ContainsFunc(at.References, func(r reference) bool { return r.Name == name }) {
					t.Errorf("dashboard %s: lens panel %s: no reference %s", o.ID, p.PanelIndex, name)
				}
				for _, c := range layer.Columns {
					if c.SourceField == "___records___" {
						continue
					}
					if err := aggregatable(c.SourceField); err != nil {
						t.Errorf("dashboard %s: lens panel %s: %v", o.ID, p.PanelIndex, err)
					}
				}
			}
			for _, f := range queryFields(at.State.Query.Query) {
				if err := aggregatable(f); err != nil {
					t.Errorf("dashboard %s: lens panel %s query: %v", o.ID, p.PanelIndex, err)
				}
			}
		default:
			t.Errorf("dashboard %s: unexpected panel type %q", o.ID, p.Type)
		}
	}
	if kinds["lens"] == 0 || kinds["search"] == 0 {
		t.Errorf("dashboard %s panels by type %v: want lens visualisations and saved searches", o.ID, kinds)
	}
}
