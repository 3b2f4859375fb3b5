package composecheck_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
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

// secretsDir runs scripts/compose-secrets.sh into a temporary directory,
// as a user would before `docker compose up`.
func secretsDir(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "compose-secrets.sh"))
	cmd.Env = append(os.Environ(), "MYMONIT_SECRETS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compose-secrets.sh: %v\n%s", err, out)
	}
	return dir
}

// load loads compose.yaml the way docker compose does, strictly: schema
// validation, interpolation, consistency of the references.
func load(t *testing.T, root string, env []string, opts ...cli.ProjectOptionsFn) *types.Project {
	t.Helper()
	dir := filepath.Join(root, "deploy", "compose")
	po, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")}, append([]cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(env),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := po.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load compose.yaml: %v", err)
	}
	return p
}

func TestComposeLoadsStrictly(t *testing.T) {
	root := repoRoot(t)
	secrets := secretsDir(t, root)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secrets})
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"adapter-lineproto", "api", "demo-experiment", "demo-feed", "elasticsearch", "elasticsearch-users",
		"elk-setup", "filebeat", "ingest", "kibana", "logstash", "migrate", "mysql", "nginx", "rabbitmq"}
	if !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}

	// Every secret a service mounts is a file the script created.
	for name, s := range p.Secrets {
		if s.File == "" || s.Environment != "" || s.External {
			t.Errorf("secret %s: want a file (got %+v)", name, s)
			continue
		}
		if fi, err := os.Stat(s.File); err != nil || fi.Size() == 0 {
			t.Errorf("secret %s: compose-secrets.sh did not create %s (%v)", name, s.File, err)
		}
	}
	// The same file loads with the settings of .env.example.
	load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secrets}, cli.WithEnvFiles(filepath.Join(root, "deploy", "compose", ".env.example")), cli.WithDotEnv)
}

// TestUnknownKeysAreRefused makes sure the loader used here is strict: a
// typo in a key must fail the check, not pass unnoticed.
func TestUnknownKeysAreRefused(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(f, []byte("services:\n  a:\n    image: busybox:1.37.0\n    helthcheck: {disable: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	po, err := cli.NewProjectOptions([]string{f}, cli.WithWorkingDirectory(dir), cli.WithName("typo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := po.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "helthcheck") {
		t.Errorf("a misspelt key loaded: %v", err)
	}
}

func TestPublishedPorts(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	got := map[string]bool{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			got[fmt.Sprintf("%s %s:%d", name, port.Published, port.Target)] = true
		}
		if len(s.Expose) > 0 {
			t.Errorf("%s: expose %v (documentation only; remove or publish deliberately)", name, s.Expose)
		}
		if s.NetworkMode == "host" {
			t.Errorf("%s: network_mode host publishes every port", name)
		}
	}
	want := map[string]bool{"nginx 443:443": true, "rabbitmq 5672:5672": true, "kibana 5601:5601": true}
	for k := range got {
		if !want[k] {
			t.Errorf("published %s: only nginx 443, RabbitMQ 5672 and Kibana 5601 may be", k)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("%s is not published", k)
		}
	}
}

// sensitiveName matches variables that would carry a secret in clear.
var sensitiveName = regexp.MustCompile(`(?i)pass(word|wd)?|secret|token|_dsn|_url$|credential|api_?key|private`)

// credentialsInValue matches URLs and DSNs with a password in them.
var credentialsInValue = regexp.MustCompile(`[a-zA-Z0-9_.-]+:[^@/\s]+@(tcp\(|[a-zA-Z0-9.-]+[:/])`)

func TestNoInlineSecrets(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	for name, s := range p.Services {
		mounted := map[string]bool{}
		for _, sec := range s.Secrets {
			target := sec.Target
			if target == "" {
				target = sec.Source
			}
			if !strings.HasPrefix(target, "/") {
				target = "/run/secrets/" + target
			}
			mounted[target] = true
		}
		for k, v := range s.Environment {
			val := ""
			if v != nil {
				val = *v
			}
			switch {
			case strings.HasSuffix(k, "_FILE") || k == "GOOGLE_APPLICATION_CREDENTIALS":
				if !mounted[val] {
					t.Errorf("%s: %s=%s is not a secret mounted in the service", name, k, val)
				}
			case sensitiveName.MatchString(k) && !strings.HasSuffix(k, "_URL") && !strings.HasSuffix(k, "_HOSTS"):
				t.Errorf("%s: %s is set inline; pass it as %s_FILE from a secret", name, k, k)
			case strings.HasSuffix(k, "_URL") && credentialsInValue.MatchString(val):
				t.Errorf("%s: %s carries credentials inline", name, k)
			}
			if credentialsInValue.MatchString(val) {
				t.Errorf("%s: %s=%s looks like credentials", name, k, val)
			}
		}
		for _, args := range [][]string{s.Command, s.Entrypoint} {
			line := strings.Join(args, " ")
			if credentialsInValue.MatchString(line) || regexp.MustCompile(`(?i)(password|passwd)[=:]\s*[^$\s"]`).MatchString(line) {
				t.Errorf("%s: command line %q holds a credential", name, line)
			}
		}
	}
}

// oneShot tells whether another service waits for this one to complete.
func oneShot(p *types.Project, name string) bool {
	for _, s := range p.Services {
		if d, ok := s.DependsOn[name]; ok && d.Condition == types.ServiceConditionCompletedSuccessfully {
			return true
		}
	}
	return false
}

func TestHealthchecksAndStartOrder(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	for name, s := range p.Services {
		hasCheck := s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 0
		switch {
		case oneShot(p, name):
			if s.Restart != "no" && !strings.HasPrefix(s.Restart, "on-failure") {
				t.Errorf("one-shot %s: restart %q would run it again after success", name, s.Restart)
			}
		case !hasCheck:
			t.Errorf("%s runs for good but has no healthcheck", name)
		case s.Restart != "unless-stopped" && s.Restart != "always":
			t.Errorf("%s: restart %q, want unless-stopped", name, s.Restart)
		}
		for dep, d := range s.DependsOn {
			target := p.Services[dep]
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
			default:
				t.Errorf("%s depends on %s with %q: want service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
	}
	for _, tt := range []struct{ service, dep, condition string }{
		{"api", "migrate", types.ServiceConditionCompletedSuccessfully},
		{"ingest", "migrate", types.ServiceConditionCompletedSuccessfully},
		{"migrate", "mysql", types.ServiceConditionHealthy},
		{"nginx", "api", types.ServiceConditionHealthy},
		{"demo-feed", "demo-experiment", types.ServiceConditionCompletedSuccessfully},
		{"elk-setup", "kibana", types.ServiceConditionHealthy},
		{"logstash", "elk-setup", types.ServiceConditionCompletedSuccessfully},
	} {
		if got := p.Services[tt.service].DependsOn[tt.dep].Condition; got != tt.condition {
			t.Errorf("%s depends on %s with %q, want %q", tt.service, tt.dep, got, tt.condition)
		}
	}
	for _, name := range []string{"api", "ingest"} {
		s := p.Services[name]
		if s.Deploy == nil || s.Deploy.Replicas == nil || *s.Deploy.Replicas != 2 {
			t.Errorf("%s: deploy.replicas is not 2", name)
		}
		if s.ContainerName != "" || len(s.Ports) > 0 {
			t.Errorf("%s: a container name or a published port forbids replicas", name)
		}
		if s.Command != nil || s.Entrypoint != nil {
			t.Errorf("%s: runs %v %v, want the image's entrypoint", name, s.Entrypoint, s.Command)
		}
	}
	if got := strings.Join(p.Services["migrate"].Command, " "); got != "migrate" {
		t.Errorf("migrate runs %q", got)
	}
}

// versionTag is a tag carrying a version number.
var versionTag = regexp.MustCompile(`^[a-z0-9./_-]+:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*(@sha256:[a-f0-9]{64})?$`)

func TestImagesArePinned(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	built := map[string]string{} // image → Go package
	for _, s := range p.Services {
		if s.Build != nil {
			built[s.Image] = *s.Build.Args["PACKAGE"]
		}
	}
	for name, s := range p.Services {
		switch {
		case s.Build != nil:
			if !strings.HasPrefix(s.Image, "mymonit/") {
				t.Errorf("%s: built image named %q, want mymonit/<name>:<version>", name, s.Image)
			}
			if s.Build.Dockerfile != "deploy/docker/Dockerfile" || s.Build.Context != root {
				t.Errorf("%s: build %s in %s, want deploy/docker/Dockerfile from the repository root", name, s.Build.Dockerfile, s.Build.Context)
			}
		case strings.HasPrefix(s.Image, "mymonit/"):
			if built[s.Image] == "" {
				t.Errorf("%s: image %s is built by no service", name, s.Image)
			}
		case !versionTag.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest"):
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
	}
	// Each image's PACKAGE is a command whose imports resolve with cgo
	// off, as the Dockerfile builds it (compiling is left to make vet and
	// make build: a static rebuild of everything here costs minutes).
	var pkgs []string
	for _, pkg := range built {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Error}}{{.ImportPath}}: {{.Error}}\n{{end}}{{if .DepsErrors}}{{.ImportPath}}: {{.DepsErrors}}\n{{end}}", pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var stderr strings.Builder // progress such as "go: downloading …"; shown on failure
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("PACKAGE %s: %v\n%s%s", pkg, err, out, stderr.String())
			continue
		}
		name, err := exec.Command("go", "list", "-C", root, "-f", "{{.Name}}", pkg).Output()
		if err != nil || strings.TrimSpace(string(name)) != "main" {
			t.Errorf("PACKAGE %s: not a command (package %q, %v)", pkg, name, err)
		}
	}
}

func TestMountedFilesExist(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	inRepo := func(what, path string) {
		t.Helper()
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s: %s is outside the repository", what, path)
			return
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: %s does not exist", what, rel)
		}
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				inRepo(name+" mounts", v.Source)
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable, want :ro", name, v.Source)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, v.Source)
				}
			default:
				t.Errorf("%s: mount of type %s", name, v.Type)
			}
		}
	}
	for name, c := range p.Configs {
		inRepo("config "+name, c.File)
	}
}

// TestLogShipping follows each log file from the server that writes it to
// the Filebeat input that reads it, and Filebeat and the services to the
// Logstash inputs.
func TestLogShipping(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	var fb struct {
		Inputs []struct {
			Type   string         `yaml:"type"`
			ID     string         `yaml:"id"`
			Paths  []string       `yaml:"paths"`
			Fields map[string]any `yaml:"fields"`
		} `yaml:"filebeat.inputs"`
		Output struct {
			Hosts []string `yaml:"hosts"`
		} `yaml:"output.logstash"`
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "filebeat", "filebeat.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &fb); err != nil {
		t.Fatalf("filebeat.yml: %v", err)
	}
	if !slices.Equal(fb.Output.Hosts, []string{"logstash:5044"}) {
		t.Errorf("filebeat output %v, want logstash:5044", fb.Output.Hosts)
	}
	pipeline, err := os.ReadFile(filepath.Join(root, "deploy", "elk", "logstash", "pipeline", "mymonit.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"5044", "5000"} {
		if !regexp.MustCompile(`port\s*=>\s*` + port + `\b`).Match(pipeline) {
			t.Errorf("the Logstash pipeline has no input on port %s", port)
		}
	}
	for name, s := range p.Services {
		if v, ok := s.Environment["MYMONIT_LOGSTASH_ADDR"]; ok && (v == nil || *v != "logstash:5000") {
			t.Errorf("%s: MYMONIT_LOGSTASH_ADDR is not logstash:5000", name)
		}
	}

	// Where Filebeat reads: each input path under a read-only volume.
	filebeat := p.Services["filebeat"]
	readFrom := map[string]string{} // mount point → volume
	for _, v := range filebeat.Volumes {
		if v.Type == types.VolumeTypeVolume && strings.HasPrefix(v.Target, "/var/log/") {
			if !v.ReadOnly {
				t.Errorf("filebeat mounts %s writable", v.Source)
			}
			readFrom[v.Target] = v.Source
		}
	}
	ids := map[string]bool{}
	var patterns []string
	for _, in := range fb.Inputs {
		if in.Type != "filestream" || in.ID == "" || ids[in.ID] {
			t.Errorf("filebeat input %q: want a filestream input with a unique id", in.ID)
		}
		ids[in.ID] = true
		if in.Fields["service"] == nil {
			t.Errorf("filebeat input %s sets no fields.service", in.ID)
		}
		for _, path := range in.Paths {
			if readFrom[filepath.Dir(path)] == "" {
				t.Errorf("filebeat input %s reads %s, which is on no mounted volume", in.ID, path)
			}
			patterns = append(patterns, path)
		}
	}
	read := func(path string) bool {
		for _, pat := range patterns {
			if ok, _ := filepath.Match(pat, path); ok {
				return true
			}
		}
		return false
	}

	// Where the servers write.
	writes := map[string][]string{} // service → log files
	nginxConf, err := os.ReadFile(filepath.Join(root, "nginx", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:access_log|error_log)\s+(\S+)`).FindAllSubmatch(nginxConf, -1) {
		writes["nginx"] = append(writes["nginx"], string(m[1]))
	}
	for _, arg := range p.Services["mysql"].Command {
		for _, flag := range []string{"--log-error=", "--general-log-file=", "--slow-query-log-file="} {
			if strings.HasPrefix(arg, flag) {
				writes["mysql"] = append(writes["mysql"], strings.TrimPrefix(arg, flag))
			}
		}
	}
	rabbitConf, err := os.Open(filepath.Join(root, "deploy", "compose", "rabbitmq", "mymonit.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(rabbitConf)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == "log.file" {
			writes["rabbitmq"] = append(writes["rabbitmq"], strings.TrimSpace(v))
		}
	}
	rabbitConf.Close()
	if v := p.Services["rabbitmq"].Environment["RABBITMQ_LOGS"]; v != nil && *v != "" {
		writes["rabbitmq"] = append(writes["rabbitmq"], *v)
	}

	for _, tt := range []struct {
		service string
		files   int
	}{{"nginx", 2}, {"mysql", 3}, {"rabbitmq", 1}} {
		files := writes[tt.service]
		if len(files) < tt.files {
			t.Errorf("%s writes %d log files (%v), want %d", tt.service, len(files), files, tt.files)
		}
		for _, f := range files {
			if !read(f) {
				t.Errorf("%s writes %s, which no filebeat input reads", tt.service, f)
				continue
			}
			// The server and Filebeat share the volume of that directory.
			shared := false
			for _, v := range p.Services[tt.service].Volumes {
				if v.Target == filepath.Dir(f) && v.Source == readFrom[filepath.Dir(f)] && !v.ReadOnly {
					shared = true
				}
			}
			if !shared {
				t.Errorf("%s writes %s on no volume shared with filebeat", tt.service, f)
			}
		}
	}
}

// TestEnvExample keeps .env.example and the variables of compose.yaml in
// step: every setting documented is used, every variable used is
// documented.
func TestEnvExample(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "deploy", "compose")
	compose, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllSubmatch(compose, -1) {
		used[string(m[1])] = true
	}
	example, err := os.ReadFile(filepath.Join(dir, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for i, line := range strings.Split(string(example), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example line %d: %q is not NAME=value", i+1, line)
			continue
		}
		documented[k] = true
		if !used[k] {
			t.Errorf(".env.example line %d: %s is not used by compose.yaml", i+1, k)
		}
		if sensitiveName.MatchString(k) && !strings.HasSuffix(k, "_DIR") {
			t.Errorf(".env.example line %d: %s looks like a secret; secrets are files", i+1, k)
		}
	}
	for k := range used {
		if !documented[k] {
			t.Errorf("compose.yaml uses ${%s}, which .env.example does not document", k)
		}
	}
}

// Every long-running MyMONIT service reads or writes the measures exchange
// (the api for its live streams): each gets the broker's URL from the
// amqp_url secret, or it would try the built-in default, a broker on its own
// loopback.
func TestBrokerWiring(t *testing.T) {
	root := repoRoot(t)
	p := load(t, root, []string{"MYMONIT_SECRETS_DIR=" + secretsDir(t, root)})
	checked := 0
	for name, s := range p.Services {
		if oneShot(p, name) || !strings.HasPrefix(s.Image, "mymonit/") || name == "elk-setup" {
			continue
		}
		checked++
		if v := s.Environment["MYMONIT_AMQP_URL_FILE"]; v == nil || *v != "/run/secrets/amqp_url" {
			t.Errorf("%s: MYMONIT_AMQP_URL_FILE is %v, want /run/secrets/amqp_url", name, v)
		}
		if !slices.ContainsFunc(s.Secrets, func(r types.ServiceSecretConfig) bool { return r.Source == "amqp_url" }) {
			t.Errorf("%s: the amqp_url secret is not mounted", name)
		}
	}
	if checked < 3 {
		t.Errorf("checked %d services, want api, ingest and the adapters", checked)
	}
}
