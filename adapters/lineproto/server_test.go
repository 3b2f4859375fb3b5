package lineproto_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"

	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/lineproto"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

type env struct {
	cfg queue.Config
	srv *lineproto.Server
	url string
}

func newEnv(t *testing.T, set lineproto.Settings) *env {
	t.Helper()
	cfg := amqptest.Config(t)
	log := zaptest.NewLogger(t)
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Logger: log, Producer: "lineproto"})
	t.Cleanup(func() { _ = pub.Close() })
	ctx := testCtx(t)
	if err := pub.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	ss := sink.DefaultSettings()
	ss.FlushInterval = 5 * time.Millisecond
	s, err := sink.New(sink.Params{Settings: ss, Publisher: pub, Producer: "lineproto", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	set.HTTPAddr = "127.0.0.1:0"
	if set.MaxBody == 0 {
		set.MaxBody = 1 << 20
	}
	srv := lineproto.NewServer(set, s, log)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return &env{cfg: cfg, srv: srv, url: "http://" + srv.HTTPAddr()}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func post(t *testing.T, url string, body []byte, gz bool) (int, lineproto.Response) {
	t.Helper()
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = b.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r lineproto.Response
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("status %d, body %q: %v", resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, r
}

func m(exp, sensor string, ts time.Time, v float64, tags map[string]string) measure.Measure {
	return measure.Measure{Experiment: exp, Sensor: sensor, Time: ts, Value: v, Tags: tags}
}

// TestWriteEndToEnd posts v1 and v2 writes (plain and gzip, several
// precisions) and a UDP datagram, and reads exactly the expected measures
// back from RabbitMQ.
func TestWriteEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, lineproto.Settings{UDPAddr: "127.0.0.1:0", UDPPrecision: "s", Experiment: "dflt", SensorTags: []string{"*"}})
	ts := time.Unix(1700000000, 0).UTC()
	writes := []struct {
		path string
		body string
		gz   bool
	}{
		{"/write?db=atlas&precision=s", "cpu,host=a usage=1.5,load=2i 1700000000\n", false},
		{"/write?db=atlas&precision=m", "mem,host=a used=10u 28333333\n", true},
		{"/api/v2/write?bucket=cms&org=x&precision=ms", "hv,experiment=lhcb,rack=r1 current=0.5 1700000000000\nhv current=0.25 1700000000000\n", true},
		{"/api/v2/write?precision=us", "t v=7 1700000000000000", false},
		{"/write", "t2 v=8 1700000000000000000", false},
	}
	for _, w := range writes {
		if code, r := post(t, e.url+w.path, []byte(w.body), w.gz); code != http.StatusNoContent {
			t.Fatalf("POST %s: %d %+v", w.path, code, r)
		}
	}
	conn, err := net.Dial("udp", e.srv.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("udp,host=b v=9 1700000000\nudp,host=b bad=\n")); err != nil {
		t.Fatal(err)
	}
	want := []measure.Measure{
		m("atlas", "cpu.usage,host=a", ts, 1.5, map[string]string{"host": "a"}),
		m("atlas", "cpu.load,host=a", ts, 2, map[string]string{"host": "a"}),
		m("atlas", "mem.used,host=a", time.Unix(28333333*60, 0).UTC(), 10, map[string]string{"host": "a"}),
		m("lhcb", "hv.current,rack=r1", ts, 0.5, map[string]string{"rack": "r1"}),
		m("cms", "hv.current", ts, 0.25, nil),
		m("dflt", "t.v", ts, 7, nil),
		m("dflt", "t2.v", ts, 8, nil),
		m("dflt", "udp.v,host=b", ts, 9, map[string]string{"host": "b"}),
	}
	got := amqptest.Measures(t, amqptest.Collect(t, e.cfg, len(want)))
	if diff := cmp.Diff(amqptest.Sort(want), amqptest.Sort(got)); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
}

// TestBadLinesReported sends one request with a bad line of every kind among
// good lines: 400 lists each bad line with its number and reason, and the
// good lines are on the queue.
func TestBadLinesReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, lineproto.Settings{SensorTags: []string{"*"}})
	body := strings.Join([]string{
		"ok v=1 1700000000",             // 1
		"syntax v=",                     // 2 parse error
		`str msg="down",v=2 1700000000`, // 3 string field refused, v kept
		"nan v=1 notatime",              // 4 bad timestamp
		"big v=1e400 1700000000",        // 5 out of range
		"far v=1 999999999999",          // 6 year beyond 9999
		"long,t=" + strings.Repeat("x", 130) + " v=1 1700000000", // 7 sensor too long
		"ok2 v=3 1700000000", // 8
	}, "\n")
	code, r := post(t, e.url+"/write?db=atlas&precision=s", []byte(body), false)
	if code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %+v", code, r)
	}
	if r.Published != 3 {
		t.Errorf("published = %d, want 3", r.Published)
	}
	var lines []int
	for _, rj := range r.Rejected {
		lines = append(lines, rj.Line)
		if rj.Reason == "" || rj.Text == "" {
			t.Errorf("rejection without reason or text: %+v", rj)
		}
	}
	if diff := cmp.Diff([]int{2, 3, 4, 5, 6, 7}, lines); diff != "" {
		t.Errorf("rejected lines (-want +got):\n%s\n%+v", diff, r.Rejected)
	}
	for _, want := range []string{`line 3: field "msg": string value "down" is not a number`, "line 6: sensor \"far.v\": time:", "line 7: sensor"} {
		if !strings.Contains(r.Message, want) && !containsReason(r, want) {
			t.Errorf("response lacks %q: %+v", want, r)
		}
	}
	ts := time.Unix(1700000000, 0).UTC()
	want := []measure.Measure{
		m("atlas", "ok.v", ts, 1, nil),
		m("atlas", "str.v", ts, 2, nil),
		m("atlas", "ok2.v", ts, 3, nil),
	}
	got := amqptest.Measures(t, amqptest.Collect(t, e.cfg, len(want)))
	if diff := cmp.Diff(amqptest.Sort(want), amqptest.Sort(got)); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
}

func containsReason(r lineproto.Response, want string) bool {
	for _, rj := range r.Rejected {
		if strings.Contains(fmt.Sprintf("line %d: %s", rj.Line, rj.Reason), want) {
			return true
		}
	}
	return false
}

// TestRequestErrors covers the errors that refuse a whole request.
func TestRequestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, lineproto.Settings{Experiment: "dflt", MaxBody: 2048})
	tests := []struct {
		name, path, body, encoding string
		status                     int
		msg                        string
	}{
		{"bad precision", "/write?precision=d", "m v=1", "", 400, `precision "d"`},
		{"bad db", "/write?db=Not+Valid", "m v=1", "", 400, `db="Not Valid" is not an experiment name`},
		{"too large", "/write", strings.Repeat("m v=1\n", 1000), "", 413, "larger than 2048 bytes"},
		{"not gzip", "/write", "m v=1", "gzip", 400, "gzip body"},
		{"other encoding", "/write", "m v=1", "br", 415, `Content-Encoding "br"`},
		{"only bad lines", "/api/v2/write", "m v=\n", "", 400, "line 1: column"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url+tc.path, strings.NewReader(tc.body))
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var r lineproto.Response
			_ = json.NewDecoder(resp.Body).Decode(&r)
			if resp.StatusCode != tc.status || !strings.Contains(r.Message, tc.msg) {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, r.Message, tc.status, tc.msg)
			}
		})
	}
	resp, err := http.Get(e.url + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("/ping: %d", resp.StatusCode)
	}
}
