package helmcheck_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/mymonit/mymonit/deploy/elk"
)

const (
	chartDir    = "../helm/mymonit"
	kubeVersion = "1.30.0"
	release     = "mymonit"
	namespace   = "mymonit"
	allFeatures = "testdata/all-features.yaml"
)

// helm returns the pinned helm binary: $MYMONIT_HELM (set by make test), or
// the one `make helm` installs under .tools/.
func helm(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^HELM_VERSION\s*:?=\s*(v\S+)`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile sets no HELM_VERSION")
	}
	version := string(m[1])
	bin := os.Getenv("MYMONIT_HELM")
	if bin == "" {
		bin, err = filepath.Abs(filepath.Join("..", "..", ".tools", "helm-"+version, "helm"))
		if err != nil {
			t.Fatal(err)
		}
	}
	// go install leaves helm's own version string at its default; the
	// module version recorded in the binary is the pinned one.
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("helm %s is not installed at %s (%v): run `make helm`, or set MYMONIT_HELM", version, bin, err)
	}
	mod := regexp.MustCompile(`(?m)^\s+mod\s+helm\.sh/helm/v3\s+(\S+)`).FindSubmatch(out)
	if mod == nil || string(mod[1]) != version {
		t.Fatalf("%s is not helm %s built by go install (build info: %s): run `make helm`", bin, version, out)
	}
	return bin
}

func runHelm(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// No repositories, plugins or caches of the machine's user.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestLint(t *testing.T) {
	bin := helm(t)
	tests := []struct {
		name    string
		args    []string
		wantErr []string // empty: lint must pass
	}{
		{name: "default values"},
		{name: "every optional feature", args: []string{"-f", allFeatures}},
		{name: "no MySQL secret", args: []string{"--set", "secrets.mysql.existingSecret="},
			wantErr: []string{"/secrets/mysql/existingSecret"}},
		{name: "unknown value", args: []string{"--set", "api.replicaCount=3"},
			wantErr: []string{"replicaCount"}},
		{name: "zero replicas", args: []string{"--set", "ingest.replicas=0"},
			wantErr: []string{"/ingest/replicas", "minimum"}},
		{name: "root container", args: []string{"--set", "containerSecurityContext.runAsNonRoot=false"},
			wantErr: []string{"/containerSecurityContext/runAsNonRoot", "must be true"}},
		{name: "bad logstash address", args: []string{"--set", "config.logstashAddr=logstash"},
			wantErr: []string{"/config/logstashAddr"}},
		{name: "adapter port named metrics", args: []string{"--set", "adapters[0].ports[0].name=metrics"},
			wantErr: []string{"/adapters/0/ports/0/name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runHelm(t, bin, append([]string{"lint", "--strict", chartDir}, tt.args...)...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("helm lint --strict: %v\n%s", err, out)
				}
				if !strings.Contains(out, "0 chart(s) failed") {
					t.Errorf("helm lint output does not report success:\n%s", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("helm lint passed, want a failure naming %v:\n%s", tt.wantErr, out)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(out, w) {
					t.Errorf("helm lint output does not name %s:\n%s", w, out)
				}
			}
		})
	}
}

// manifests is a rendered release, decoded.
type manifests struct {
	deployments  []*appsv1.Deployment
	jobs         []*batchv1.Job
	services     []*corev1.Service
	accounts     []*corev1.ServiceAccount
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
	ingresses    []*networkingv1.Ingress
	scaled       []scaledObject
	triggerAuths []triggerAuthentication
	monitors     []serviceMonitor
	kinds        map[string]int
}

// Custom resources the scheme does not know, decoded strictly into the
// fields the chart may set.
type objectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type scaledObject struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int `json:"minReplicaCount"`
		MaxReplicaCount *int `json:"maxReplicaCount"`
		PollingInterval int  `json:"pollingInterval"`
		CooldownPeriod  int  `json:"cooldownPeriod"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef struct {
				Name string `json:"name"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

type triggerAuthentication struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}

type serviceMonitor struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decodeCustom decodes a custom resource strictly: unknown fields fail.
func decodeCustom(doc []byte, into any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// render runs helm template and decodes every manifest strictly.
func render(t *testing.T, bin string, args ...string) *manifests {
	t.Helper()
	out, err := runHelm(t, bin, append([]string{"template", release, chartDir, "--namespace", namespace,
		"--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	m := &manifests{kinds: map[string]int{}}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		source := "?"
		if s := regexp.MustCompile(`(?m)^# Source: (.+)$`).FindStringSubmatch(doc); s != nil {
			source = s[1]
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: not YAML: %v", source, err)
		}
		if head.Kind == "" {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) != "" {
				t.Errorf("%s: a document without kind:\n%s", source, doc)
			}
			continue
		}
		m.kinds[head.Kind]++
		obj, _, err := strict.Decode([]byte(doc), nil, nil)
		if runtime.IsNotRegisteredError(err) {
			decodeCustomKind(t, m, source, head.APIVersion, head.Kind, []byte(doc))
			continue
		}
		if err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", source, head.APIVersion, head.Kind, err)
			continue
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *batchv1.Job:
			m.jobs = append(m.jobs, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *corev1.ServiceAccount:
			m.accounts = append(m.accounts, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, o)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		case *networkingv1.NetworkPolicy:
			m.policies = append(m.policies, o)
		case *networkingv1.Ingress:
			m.ingresses = append(m.ingresses, o)
		default:
			t.Errorf("%s: unexpected %T", source, obj)
		}
	}
	return m
}

func decodeCustomKind(t *testing.T, m *manifests, source, apiVersion, kind string, doc []byte) {
	t.Helper()
	var err error
	switch apiVersion + " " + kind {
	case "keda.sh/v1alpha1 ScaledObject":
		var o scaledObject
		err = decodeCustom(doc, &o)
		m.scaled = append(m.scaled, o)
	case "keda.sh/v1alpha1 TriggerAuthentication":
		var o triggerAuthentication
		err = decodeCustom(doc, &o)
		m.triggerAuths = append(m.triggerAuths, o)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var o serviceMonitor
		err = decodeCustom(doc, &o)
		m.monitors = append(m.monitors, o)
	default:
		t.Errorf("%s: unknown kind %s %s", source, apiVersion, kind)
		return
	}
	if err != nil {
		t.Errorf("%s: %s %s does not decode strictly: %v", source, apiVersion, kind, err)
	}
}

func TestTemplate(t *testing.T) {
	bin := helm(t)
	tests := []struct {
		name  string
		args  []string
		kinds map[string]int
		// deployments expected, by component
		components []string
	}{
		{
			name: "default values",
			kinds: map[string]int{"Deployment": 3, "Service": 3, "ServiceAccount": 1, "HorizontalPodAutoscaler": 1,
				"PodDisruptionBudget": 2, "NetworkPolicy": 3, "Job": 1},
			components: []string{"api", "ingest", "adapter-lineproto"},
		},
		{
			name: "every optional feature",
			args: []string{"-f", allFeatures},
			kinds: map[string]int{"Deployment": 4, "Service": 4, "ServiceAccount": 1, "HorizontalPodAutoscaler": 1,
				"PodDisruptionBudget": 3, "NetworkPolicy": 3, "Job": 1, "Ingress": 1, "ScaledObject": 1,
				"TriggerAuthentication": 1, "ServiceMonitor": 1},
			components: []string{"api", "ingest", "adapter-lineproto", "adapter-mqttbridge"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := render(t, bin, tt.args...)
			if !mapsEqual(m.kinds, tt.kinds) {
				t.Errorf("rendered kinds %v, want %v", m.kinds, tt.kinds)
			}
			var comps []string
			for _, d := range m.deployments {
				comps = append(comps, d.Spec.Template.Labels["app.kubernetes.io/component"])
			}
			if !sameSet(comps, tt.components) {
				t.Errorf("deployments of %v, want %v", comps, tt.components)
			}
			checkPods(t, m)
			checkSecrets(t, m)
			checkWiring(t, m)
			checkNetworkPolicies(t, m)
			checkMigrationJob(t, m)
			checkIngress(t, m)
			checkAutoscaling(t, m)
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// pod is a workload's pod template with a name for messages.
type pod struct {
	name     string
	spec     corev1.PodSpec
	labels   map[string]string
	longRun  bool // Deployments: probes required
	replicas *int32
}

func (m *manifests) pods() []pod {
	var ps []pod
	for _, d := range m.deployments {
		ps = append(ps, pod{"Deployment " + d.Name, d.Spec.Template.Spec, d.Spec.Template.Labels, true, d.Spec.Replicas})
	}
	for _, j := range m.jobs {
		ps = append(ps, pod{"Job " + j.Name, j.Spec.Template.Spec, j.Spec.Template.Labels, false, nil})
	}
	return ps
}

// checkPods asserts the security and operability properties of every pod.
func checkPods(t *testing.T, m *manifests) {
	t.Helper()
	for _, p := range m.pods() {
		s := p.spec
		if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
			t.Errorf("%s mounts a service-account token", p.name)
		}
		if s.HostNetwork || s.HostPID || s.HostIPC {
			t.Errorf("%s shares a host namespace", p.name)
		}
		psc := s.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", p.name)
		}
		if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod runs as uid 0 or an unset uid", p.name)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", p.name)
		}
		if len(s.Containers) == 0 {
			t.Errorf("%s has no containers", p.name)
		}
		for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
			name := p.name + " container " + c.Name
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s has no securityContext", name)
				continue
			case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
				t.Errorf("%s: runAsNonRoot is not true", name)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s: readOnlyRootFilesystem is not true", name)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s: allowPrivilegeEscalation is not false", name)
			case sc.Privileged != nil && *sc.Privileged:
				t.Errorf("%s is privileged", name)
			case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s: capabilities do not drop ALL (or add some): %+v", name, sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Errorf("%s: seccompProfile is not RuntimeDefault", name)
			}
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("%s: resources want cpu and memory requests and a memory limit, got %+v", name, r)
			}
			if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a tag", name, c.Image)
			}
			if !p.longRun {
				continue
			}
			ports := map[string]bool{}
			for _, cp := range c.Ports {
				ports[cp.Name] = true
			}
			for kind, want := range map[string]struct {
				probe *corev1.Probe
				path  string
			}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
				if want.probe == nil || want.probe.HTTPGet == nil {
					t.Errorf("%s has no HTTP %s probe", name, kind)
					continue
				}
				if want.probe.HTTPGet.Path != want.path {
					t.Errorf("%s: %s probe on %s, want %s", name, kind, want.probe.HTTPGet.Path, want.path)
				}
				if !ports[want.probe.HTTPGet.Port.String()] {
					t.Errorf("%s: %s probe port %s is not a container port", name, kind, want.probe.HTTPGet.Port.String())
				}
			}
		}
	}
}

// checkSecrets asserts that no secret value is rendered: no Secret
// objects, secrets passed as _FILE paths inside mounted Secret volumes of
// the existingSecret names, no literal credentials in the environment.
func checkSecrets(t *testing.T, m *manifests) {
	t.Helper()
	if n := m.kinds["Secret"]; n > 0 {
		t.Errorf("the chart renders %d Secret objects; secrets must be referenced (existingSecret)", n)
	}
	sensitive := regexp.MustCompile(`(?i)(DSN|PASSWORD|TOKEN|SECRET|CREDENTIAL|AMQP_URL)`)
	for _, p := range m.pods() {
		mounts := map[string]string{} // mount path → secret name
		volumes := map[string]string{}
		for _, v := range p.spec.Volumes {
			if v.Secret != nil {
				volumes[v.Name] = v.Secret.SecretName
			}
		}
		for _, c := range p.spec.Containers {
			for _, vm := range c.VolumeMounts {
				if s, ok := volumes[vm.Name]; ok {
					if !vm.ReadOnly {
						t.Errorf("%s: secret volume %s mounted read-write", p.name, vm.Name)
					}
					mounts[vm.MountPath] = s
				}
			}
			for _, e := range c.Env {
				name := p.name + " env " + e.Name
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("%s: a secret in the environment; pass it as a _FILE", name)
				}
				if strings.HasSuffix(e.Name, "_FILE") {
					secret, ok := mounts[filepath.Dir(e.Value)]
					if !ok {
						t.Errorf("%s=%s: no Secret volume mounted at %s", name, e.Value, filepath.Dir(e.Value))
					} else if !slices.Contains([]string{"mymonit-mysql", "mymonit-amqp", "mymonit-firebase"}, secret) {
						t.Errorf("%s: mounted from Secret %q, not an existingSecret of the values", name, secret)
					}
					continue
				}
				if sensitive.MatchString(e.Name) && e.Name != "GOOGLE_APPLICATION_CREDENTIALS" {
					t.Errorf("%s holds a secret in clear: use %s_FILE", name, e.Name)
				}
				if e.Name == "GOOGLE_APPLICATION_CREDENTIALS" {
					if _, ok := mounts[filepath.Dir(e.Value)]; !ok {
						t.Errorf("%s=%s: not in a mounted Secret", name, e.Value)
					}
				}
			}
		}
	}
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// checkWiring asserts that selectors, targets and ports fit together and
// that the services ship logs to the Logstash port of the pipeline.
func checkWiring(t *testing.T, m *manifests) {
	t.Helper()
	for _, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector %v does not match its pods (%v)", d.Name, d.Spec.Selector, err)
		}
	}
	matching := func(sel labels.Selector) []string {
		var names []string
		for _, p := range m.pods() {
			if sel.Matches(labels.Set(p.labels)) {
				names = append(names, p.name)
			}
		}
		return names
	}
	for _, s := range m.services {
		pods := matching(labels.SelectorFromSet(s.Spec.Selector))
		if len(pods) != 1 {
			t.Errorf("Service %s selects %v, want one workload", s.Name, pods)
			continue
		}
		d := deployment(m, pods[0])
		for _, sp := range s.Spec.Ports {
			if !hasPort(d, sp.TargetPort.String()) {
				t.Errorf("Service %s port %s targets %s, not a port of %s", s.Name, sp.Name, sp.TargetPort.String(), d.Name)
			}
		}
		if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
			t.Errorf("Service %s has no metrics port for the ServiceMonitor", s.Name)
		}
	}
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		pods := matching(sel)
		if len(pods) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want one workload", p.Name, pods)
			continue
		}
		if d := deployment(m, pods[0]); p.Spec.MinAvailable != nil && d.Spec.Replicas != nil &&
			p.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
			t.Errorf("PodDisruptionBudget %s minAvailable %s blocks every eviction of %d replicas", p.Name, p.Spec.MinAvailable, *d.Spec.Replicas)
		}
	}
	// Every Deployment (api, ingest, adapters) uses the measures exchange,
	// the api for its live streams: each reads the broker's URL from the
	// mounted secret, or it would try a broker on its own loopback.
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			file, ok := env(c, "MYMONIT_AMQP_URL_FILE")
			mounted := slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
				return strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
			})
			if !ok || !mounted {
				t.Errorf("Deployment %s: MYMONIT_AMQP_URL_FILE=%q (set: %v) is not in a mounted volume", d.Name, file, ok)
			}
		}
	}
	for _, p := range m.pods() {
		for _, c := range p.spec.Containers {
			addr, ok := env(c, "MYMONIT_LOGSTASH_ADDR")
			if !ok {
				t.Errorf("%s: no MYMONIT_LOGSTASH_ADDR", p.name)
				continue
			}
			if _, port, err := net.SplitHostPort(addr); err != nil || port != strconv.Itoa(elk.ServicesPort) {
				t.Errorf("%s: MYMONIT_LOGSTASH_ADDR=%s, but the Logstash pipeline listens on %d", p.name, addr, elk.ServicesPort)
			}
		}
	}
	for _, sm := range m.monitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range m.services {
			if sel.Matches(labels.Set(s.Labels)) {
				n++
			}
		}
		if n != len(m.services) || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" {
			t.Errorf("ServiceMonitor %s selects %d of %d Services, endpoints %+v", sm.Metadata.Name, n, len(m.services), sm.Spec.Endpoints)
		}
	}
}

func deployment(m *manifests, podName string) *appsv1.Deployment {
	for _, d := range m.deployments {
		if "Deployment "+d.Name == podName {
			return d
		}
	}
	return &appsv1.Deployment{}
}

func hasPort(d *appsv1.Deployment, name string) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name || strconv.Itoa(int(p.ContainerPort)) == name {
				return true
			}
		}
	}
	return false
}

// checkNetworkPolicies asserts that every pod is isolated both ways and
// that the api accepts traffic from the ingress controller's namespace
// only.
func checkNetworkPolicies(t *testing.T, m *manifests) {
	t.Helper()
	for _, p := range m.pods() {
		var types []networkingv1.PolicyType
		for _, np := range m.policies {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			if sel.Matches(labels.Set(p.labels)) {
				types = append(types, np.Spec.PolicyTypes...)
			}
		}
		if !slices.Contains(types, networkingv1.PolicyTypeIngress) || !slices.Contains(types, networkingv1.PolicyTypeEgress) {
			t.Errorf("%s is not isolated by a NetworkPolicy for ingress and egress (types %v)", p.name, types)
		}
	}
	for _, np := range m.policies {
		if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "api" {
			continue
		}
		if len(np.Spec.Ingress) == 0 {
			t.Errorf("NetworkPolicy %s: the api accepts no traffic at all", np.Name)
		}
		for i, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s ingress rule %d admits every source", np.Name, i)
			}
			for _, from := range rule.From {
				ns := ""
				if from.NamespaceSelector != nil {
					ns = from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
				}
				if from.IPBlock != nil || from.PodSelector != nil || (ns != "ingress-nginx" && ns != "monitoring") {
					t.Errorf("NetworkPolicy %s ingress rule %d admits %+v; want the ingress controller's namespace (or Prometheus')", np.Name, i, from)
				}
			}
		}
		var egressPorts []string
		for _, rule := range np.Spec.Egress {
			for _, p := range rule.Ports {
				egressPorts = append(egressPorts, p.Port.String())
			}
		}
		for _, want := range []string{"53", "3306", "5672", strconv.Itoa(elk.ServicesPort), "443"} {
			if !slices.Contains(egressPorts, want) {
				t.Errorf("NetworkPolicy %s: the api may not reach port %s (egress ports %v)", np.Name, want, egressPorts)
			}
		}
	}
}

func checkMigrationJob(t *testing.T, m *manifests) {
	t.Helper()
	if len(m.jobs) != 1 {
		t.Fatalf("%d Jobs, want the migration Job", len(m.jobs))
	}
	j := m.jobs[0]
	hooks := strings.Split(j.Annotations["helm.sh/hook"], ",")
	if !slices.Contains(hooks, "pre-install") || !slices.Contains(hooks, "pre-upgrade") {
		t.Errorf("Job %s hooks %v, want pre-install and pre-upgrade", j.Name, hooks)
	}
	if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job %s restartPolicy %s", j.Name, j.Spec.Template.Spec.RestartPolicy)
	}
	c := j.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"migrate"}) || !strings.Contains(c.Image, "mymonit/ingest:") {
		t.Errorf("Job %s runs %s %v, want the ingest image with migrate", j.Name, c.Image, c.Args)
	}
	if sa := j.Spec.Template.Spec.ServiceAccountName; sa != "" {
		t.Errorf("Job %s uses service account %s, which does not exist yet when a pre-install hook runs", j.Name, sa)
	}
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if v, ok := env(c, "MYMONIT_MYSQL_MIGRATE_ON_START"); ok && v != "false" {
				t.Errorf("Deployment %s migrates on start although the Job does", d.Name)
			}
		}
	}
}

func checkIngress(t *testing.T, m *manifests) {
	t.Helper()
	for _, ing := range m.ingresses {
		for k, want := range map[string]string{
			"nginx.ingress.kubernetes.io/proxy-buffering":    "off",
			"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
		} {
			if got := ing.Annotations[k]; got != want {
				t.Errorf("Ingress %s: %s=%q, want %q (server-sent events)", ing.Name, k, got, want)
			}
		}
		if len(ing.Spec.TLS) == 0 {
			t.Errorf("Ingress %s has no TLS although a certificate Secret is set", ing.Name)
		}
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				svc := p.Backend.Service
				if svc == nil || !slices.ContainsFunc(m.services, func(s *corev1.Service) bool {
					return s.Name == svc.Name && slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == svc.Port.Name })
				}) {
					t.Errorf("Ingress %s path %s: backend %+v is not a Service port of the chart", ing.Name, p.Path, svc)
				}
			}
		}
	}
}

func checkAutoscaling(t *testing.T, m *manifests) {
	t.Helper()
	target := func(kind, name string) *appsv1.Deployment {
		for _, d := range m.deployments {
			if kind == "Deployment" && d.Name == name {
				return d
			}
		}
		return nil
	}
	for _, h := range m.hpas {
		d := target(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		if d == nil {
			t.Errorf("HPA %s targets %s %s, not a Deployment of the chart", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although HPA %s scales it (every upgrade would reset it)", d.Name, h.Name)
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA %s metrics %+v, want CPU", h.Name, h.Spec.Metrics)
		}
	}
	for _, so := range m.scaled {
		ref := so.Spec.ScaleTargetRef
		d := target(ref.Kind, ref.Name)
		if d == nil {
			t.Errorf("ScaledObject %s targets %s %s, not a Deployment of the chart", so.Metadata.Name, ref.Kind, ref.Name)
			continue
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although KEDA scales it", d.Name)
		}
		if len(so.Spec.Triggers) != 1 {
			t.Fatalf("ScaledObject %s triggers %+v", so.Metadata.Name, so.Spec.Triggers)
		}
		tr := so.Spec.Triggers[0]
		if tr.Type != "rabbitmq" || tr.Metadata["mode"] != "QueueLength" || tr.Metadata["queueName"] != "mymonit.ingest" {
			t.Errorf("ScaledObject %s trigger %+v, want rabbitmq QueueLength on mymonit.ingest", so.Metadata.Name, tr)
		}
		if _, err := strconv.Atoi(tr.Metadata["value"]); err != nil {
			t.Errorf("ScaledObject %s value %q: %v", so.Metadata.Name, tr.Metadata["value"], err)
		}
		if !slices.ContainsFunc(m.triggerAuths, func(a triggerAuthentication) bool {
			return a.Metadata.Name == tr.AuthenticationRef.Name && len(a.Spec.SecretTargetRef) == 1 &&
				a.Spec.SecretTargetRef[0].Parameter == "host" && a.Spec.SecretTargetRef[0].Name == "mymonit-amqp"
		}) {
			t.Errorf("ScaledObject %s: authentication %q is not a TriggerAuthentication reading host from mymonit-amqp", so.Metadata.Name, tr.AuthenticationRef.Name)
		}
	}
}

// TestValuesDocumented keeps values.yaml and values.schema.json in step:
// every top-level value has a schema entry and the other way round.
func TestValuesDocumented(t *testing.T) {
	var values map[string]any
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]any `json:"properties"`
	}
	b, err = os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	for k := range values {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("value %s has no schema", k)
		}
	}
	for k := range schema.Properties {
		if _, ok := values[k]; !ok {
			t.Errorf("schema property %s has no default in values.yaml", k)
		}
	}
	if fmt.Sprint(values["config"].(map[string]any)["logstashAddr"]) != "logstash:"+strconv.Itoa(elk.ServicesPort) {
		t.Errorf("config.logstashAddr %v, want logstash:%d", values["config"].(map[string]any)["logstashAddr"], elk.ServicesPort)
	}
}
