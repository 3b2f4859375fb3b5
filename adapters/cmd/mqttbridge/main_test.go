package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/internal/command"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// TestMain runs the command itself when the crash test starts this test
// binary as a child process.
func TestMain(m *testing.M) {
	if os.Getenv("MYMONIT_TEST_RUN_MQTTBRIDGE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestBridgeToQueue runs the command against the real Mosquitto and
// RabbitMQ: good QoS 1 messages arrive on the queue exactly once, bad ones
// beside them are logged with topic and reason.
func TestBridgeToQueue(t *testing.T) {
	broker := mqttURL(t)
	q := amqptest.Config(t)
	prefix := testenv.Name("mymonit-test")
	rules := writeRules(t, prefix)
	adapterEnv(t, q)
	id := session(t, broker)

	var logs testenv.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-rules", rules, "-broker", broker, "-client-id", id}, &logs, &logs)
	}()
	waitFor(t, "the bridge subscribed", func() bool { return strings.Contains(logs.String(), `"message":"mqttbridge started"`) })

	pub := publisher(t, broker)
	publish(t, pub, prefix+"/exp-a/t1", `{"value": 21.5, "time": "2026-11-23T10:00:00Z"}`)
	publish(t, pub, prefix+"/exp-a/t2", `{"value": "warm"}`)
	publish(t, pub, prefix+"/exp-a/t3", "22.5")
	at, _ := time.Parse(time.RFC3339, "2026-11-23T10:00:00Z")
	got := amqptest.CollectMeasures(t, q, 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	if diff := cmp.Diff(measure.Measure{Experiment: "exp-a", Sensor: "t1", Time: at, Value: 21.5, Unit: "degC"}, got[0]); diff != "" {
		t.Errorf("first measure (-want +got):\n%s", diff)
	}
	if got[1].Sensor != "t3" || got[1].Value != 22.5 || got[1].Time.IsZero() {
		t.Errorf("plain number published as %+v", got[1])
	}
	if n, err := queue.Depth(context.Background(), q, q.Queue); err != nil || n != 0 {
		t.Errorf("queue holds %d more messages (err %v)", n, err)
	}
	for _, w := range []string{`"mqtt.topic":"` + prefix + `/exp-a/t2"`, `payload: value: must be a JSON number`} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("logs do not contain %s:\n%s", w, logs.String())
		}
	}
}

// TestKilledBeforeConfirm kills the bridge process (SIGKILL) while RabbitMQ
// has not confirmed a message's measures (the bridge reaches RabbitMQ
// through a proxy that stops forwarding), then starts it again with the same
// client id: Mosquitto delivers the unacknowledged message again and its
// measure arrives on the queue, once.
func TestKilledBeforeConfirm(t *testing.T) {
	broker := mqttURL(t)
	q := amqptest.Config(t)
	prefix := testenv.Name("mymonit-test")
	rules := writeRules(t, prefix)
	id := session(t, broker)
	p, viaProxy := testenv.StartProxy(t, q.URL)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := func(amqpURL string) (*exec.Cmd, *testenv.Buffer, string) {
		httpAddr := freeAddr(t)
		cmd := exec.Command(exe, "-rules", rules, "-broker", broker, "-client-id", id, "-http-addr", httpAddr, "-flush-interval", "5ms")
		cmd.Env = append(os.Environ(),
			"MYMONIT_TEST_RUN_MQTTBRIDGE=1",
			"MYMONIT_AMQP_URL="+amqpURL,
			"MYMONIT_AMQP_EXCHANGE="+q.Exchange,
		)
		var out testenv.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		waitFor(t, "the bridge started", func() bool { return strings.Contains(out.String(), `"message":"mqttbridge started"`) })
		return cmd, &out, httpAddr
	}

	first, out, httpAddr := start(viaProxy)
	p.Freeze()
	publish(t, publisher(t, broker), prefix+"/exp-a/hv1", `{"value": 42, "time": "2026-11-23T10:00:00Z"}`)
	waitFor(t, "the bridge received the message", func() bool {
		return strings.Contains(scrape(httpAddr), "mymonit_adapter_measures_received_total{adapter=\"mqttbridge\"} 1")
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	p.Close()
	if n, err := queue.Depth(context.Background(), q, q.Queue); err != nil || n != 0 {
		t.Fatalf("queue holds %d messages before the restart (err %v): the proxy let a publish through\n%s", n, err, out.String())
	}

	second, out2, _ := start(q.URL)
	at, _ := time.Parse(time.RFC3339, "2026-11-23T10:00:00Z")
	got := amqptest.CollectMeasures(t, q, 1)
	if diff := cmp.Diff([]measure.Measure{{Experiment: "exp-a", Sensor: "hv1", Time: at, Value: 42, Unit: "degC"}}, got); diff != "" {
		t.Errorf("measures after the restart (-want +got):\n%s", diff)
	}
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("bridge exit after SIGTERM: %v\n%s", err, out2.String())
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - topic: a/+\n    experiment: \"{2}\"\n    sensor: s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // on stderr
		code int
	}{
		{"no rules file", nil, nil, "MYMONIT_MQTT_RULES (-rules) is required", 1},
		{"missing file", nil, []string{"-rules", filepath.Join(dir, "nope.yaml")}, "nope.yaml: no such file", 1},
		{"bad rule named with its line", nil, []string{"-rules", bad}, "rules[0] (line 2): experiment: {2} but the topic filter has 1 + wildcards", 1},
		{"bad broker URL", nil, []string{"-rules", bad, "-broker", "127.0.0.1"}, "MYMONIT_MQTT_BROKER (-broker)", 1},
		{"bad environment value", map[string]string{"MYMONIT_MQTT_KEEPALIVE": "often"}, []string{"-rules", bad}, `MYMONIT_MQTT_KEEPALIVE="often"`, 1},
		{"no client id", nil, []string{"-rules", bad, "-client-id", ""}, "MYMONIT_MQTT_CLIENT_ID (-client-id) is required", 1},
		{"stray argument", nil, []string{"-rules", bad, "extra"}, `mqttbridge: unexpected argument "extra" (run mqttbridge -help)`, 2},
		{"bad flag", nil, []string{"-rule", bad}, "flag provided but not defined: -rule\nrun mqttbridge -help for the flags, the rules file and the payloads\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			code := command.Exit("mqttbridge", err, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit status %d, stderr:\n%s\nwant %d and stderr saying %q", code, stderr.String(), tt.code, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %s", stdout.String())
			}
		})
	}
}

func TestHelpExplainsTheMapping(t *testing.T) {
	t.Setenv("MYMONIT_MQTT_KEEPALIVE", "often") // the help shows all the same
	var out, stderr bytes.Buffer
	err := run(t.Context(), []string{"-help"}, &out, &stderr)
	if code := command.Exit("mqttbridge", err, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("-help: exit status %d, stderr:\n%s", code, stderr.String())
	}
	for _, w := range []string{"rules:", "{1}", "{#}", `"value": 21.5`, "acknowledged", "MYMONIT_MQTT_CLIENT_ID", "-broker"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help does not mention %s", w)
		}
	}
}

func writeRules(t *testing.T, prefix string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "rules.yaml")
	rules := fmt.Sprintf("rules:\n  - topic: %s/+/+\n    experiment: \"{1}\"\n    sensor: \"{2}\"\n    unit: degC\n", prefix)
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// mqttURL is the test MQTT broker: MYMONIT_TEST_MQTT_URL, by default the
// local Mosquitto. A broker that cannot be reached fails the test.
func mqttURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("MYMONIT_TEST_MQTT_URL")
	if u == "" {
		u = "tcp://127.0.0.1:1883"
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("MYMONIT_TEST_MQTT_URL: %v", err)
	}
	conn, err := net.DialTimeout("tcp", parsed.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("MQTT broker at %s is not reachable (start Mosquitto with `make services`): %v", u, err)
	}
	_ = conn.Close()
	return u
}

// session returns a client id for a persistent session and removes the
// session from the broker when the test ends.
func session(t *testing.T, broker string) string {
	t.Helper()
	id := testenv.Name("mymonit-test")
	t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true))
		if tok := c.Connect(); tok.Wait() && tok.Error() == nil {
			c.Disconnect(0)
		}
	})
	return id
}

func publisher(t *testing.T, broker string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(testenv.Name("mymonit-test-pub")))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

func adapterEnv(t *testing.T, q queue.Config) {
	for k, v := range map[string]string{
		"MYMONIT_AMQP_URL":               q.URL,
		"MYMONIT_AMQP_EXCHANGE":          q.Exchange,
		"MYMONIT_ADAPTER_HTTP_ADDR":      "127.0.0.1:0",
		"MYMONIT_ADAPTER_FLUSH_INTERVAL": "5ms",
	} {
		t.Setenv(k, v)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape returns the /metrics page at addr, or "" while it cannot be read.
func scrape(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
