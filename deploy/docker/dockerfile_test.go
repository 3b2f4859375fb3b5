package docker_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// repoRoot is the directory holding go.work, the build context.
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

func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(metaArgs) != 0 {
		t.Errorf("ARG before the first FROM (%v): base images must be pinned literally", metaArgs)
	}
	return stages
}

// pinnedImage accepts scratch, a digest, or a tag carrying a version number.
var pinnedImage = regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9._-]*[0-9][A-Za-z0-9._-]*)?(@sha256:[a-f0-9]{64})?$`)

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stage(s): want a multi-stage build (build, then a minimal final stage)", len(stages))
	}
	names := map[string]bool{}
	for i, s := range stages {
		t.Run("stage "+s.BaseName, func(t *testing.T) {
			base := s.BaseName
			switch {
			case names[base]:
			case base == "scratch":
			case strings.Contains(base, "$"):
				t.Errorf("FROM %s: base image from a variable, want it pinned literally", base)
			case !pinnedImage.MatchString(base) || !strings.ContainsAny(base, ":@") || strings.HasSuffix(base, ":latest"):
				t.Errorf("FROM %s: want a version tag (or a digest), not a floating tag", base)
			}
			for _, c := range s.Commands {
				if add, ok := c.(*instructions.AddCommand); ok {
					for _, src := range add.SourcePaths {
						if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
							t.Errorf("ADD %s: remote source, want COPY of checked-in files", src)
						}
					}
				}
			}
		})
		if s.Name != "" {
			names[s.Name] = true
		}
		if i < len(stages)-1 && s.Name == "" {
			t.Errorf("stage %d (FROM %s) has no name: later stages copy from it by name", i, s.BaseName)
		}
	}

	final := stages[len(stages)-1]
	if final.BaseName != "scratch" && !strings.Contains(final.BaseName, "distroless") {
		t.Errorf("final stage FROM %s: want scratch or distroless", final.BaseName)
	}
	var (
		user, entrypoint string
		health           *instructions.HealthCheckCommand
		copiedFromBuild  bool
	)
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			if !c.PrependShell {
				entrypoint = strings.Join(c.CmdLine, " ")
			}
		case *instructions.CopyCommand:
			if names[c.From] {
				copiedFromBuild = true
			}
		case *instructions.RunCommand:
			t.Errorf("RUN in the final stage (%s): it has no shell", c.String())
		}
	}
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:") {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if health == nil || len(health.Health.Test) == 0 || health.Health.Test[0] == "NONE" {
		t.Errorf("final stage has no HEALTHCHECK")
	} else if health.Health.Test[0] != "CMD" || !strings.HasPrefix(health.Health.Test[1], "/") {
		t.Errorf("HEALTHCHECK %v: want the exec form of a binary in the image (no shell in scratch)", health.Health.Test)
	}
	if entrypoint != "/usr/local/bin/mymonit" {
		t.Errorf("ENTRYPOINT %q: want the exec form [\"/usr/local/bin/mymonit\"] (compose and the chart pass subcommands as arguments)", entrypoint)
	}
	if !copiedFromBuild {
		t.Error("the final stage copies nothing from the build stage")
	}

	// The build: a static, reproducible binary of the package named by
	// the PACKAGE build argument, and the probe the HEALTHCHECK runs.
	var build strings.Builder
	for _, c := range stages[0].Commands {
		fmt.Fprintln(&build, c)
	}
	for _, want := range []string{"ARG PACKAGE", "CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", `"${PACKAGE}"`, "./deploy/docker/healthcheck", "COPY . ."} {
		if !strings.Contains(build.String(), want) {
			t.Errorf("build stage lacks %q:\n%s", want, build.String())
		}
	}
}

// TestBuildContext walks the repository through Dockerfile.dockerignore: the
// Go workspace and everything embedded goes in, secrets and local state do
// not.
func TestBuildContext(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf("Dockerfile.dockerignore: %v", err)
	}
	excluded := func(rel string) bool {
		t.Helper()
		ex, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			t.Fatalf("match %s: %v", rel, err)
		}
		return ex
	}

	tests := []struct {
		path string
		in   bool
	}{
		{"go.work", true},
		{"go.work.sum", true},
		{"deploy/docker/healthcheck/main.go", true},
		{"services/api/internal/httpapi/openapi.yaml", true},
		{".git/config", false},
		{"bin/api", false},
		{".run/api.log", false},
		{"services/api/firebase/node_modules/firebase-tools/package.json", false},
		{"deploy/compose/secrets/mysql_password", false},
		{"deploy/compose/secrets/nginx_tls_key", false},
		{"nginx/nginx.conf", false},
		{"some/dir/server.key", false},
		{"deploy/compose/.env", false},
	}
	for _, m := range workspaceModules(t, root) {
		tests = append(tests, struct {
			path string
			in   bool
		}{m + "/go.mod", true})
	}
	for _, tt := range tests {
		if got := !excluded(tt.path); got != tt.in {
			t.Errorf("%s in the build context = %v, want %v", tt.path, got, tt.in)
		}
	}

	// Every file a Go package embeds must reach the build, and no key or
	// secret file of the working tree may.
	embed := regexp.MustCompile(`^//go:embed (.+)$`)
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.Contains(rel, "/secrets/") || strings.HasSuffix(rel, ".pem") || strings.HasSuffix(rel, ".key") {
			if !excluded(rel) && !strings.HasSuffix(rel, "README.md") {
				t.Errorf("%s would enter the build context", rel)
			}
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		if excluded(rel) {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(src), "\n") {
			m := embed.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			for _, pat := range strings.Fields(m[1]) {
				files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), pat))
				if len(files) == 0 {
					t.Errorf("%s embeds %s: no such file", rel, pat)
				}
				for _, file := range files {
					r, _ := filepath.Rel(root, file)
					if excluded(filepath.ToSlash(r)) {
						t.Errorf("%s embeds %s, which the build context leaves out", rel, r)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// workspaceModules lists the directories of go.work's use block.
func workspaceModules(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mods []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "./") {
			mods = append(mods, strings.TrimPrefix(line, "./"))
		}
	}
	if len(mods) == 0 {
		t.Fatal("go.work uses no module")
	}
	return mods
}
