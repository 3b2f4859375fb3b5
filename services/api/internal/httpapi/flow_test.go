package httpapi_test

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/storage"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// TestMeasuresFullFlow is the whole path of a measure: an admin registers
// a scientist and an experiment and makes the scientist a member; measures
// are published to RabbitMQ in the v1 contract and stored by the real
// ingest service (built from services/ingest and run as a process against
// the test database); the scientist reads them back through the API, as
// JSON and as CSV, value for value; the admin removes the membership and
// the scientist is refused (403, membership revoked). Every answer is
// checked against the OpenAPI document.
func TestMeasuresFullFlow(t *testing.T) {
	e := newEnv(t)
	admin := e.signUp(storage.RoleAdmin)
	sciFB := e.signUp("")

	r := e.do("POST", "/v1/users", admin.token, map[string]any{"firebase_uid": sciFB.fb.UID, "role": "scientist"})
	wantStatus(t, "create scientist", r, http.StatusCreated)
	var sci apiUser
	r.decode(t, &sci)
	wantStatus(t, "create experiment", e.do("POST", "/v1/experiments", admin.token, map[string]any{"id": "flow-exp", "name": "Flow"}), http.StatusCreated)
	member := fmt.Sprintf("/v1/experiments/flow-exp/members/%d", sci.ID)
	wantStatus(t, "add member", e.do("PUT", member, admin.token, nil), http.StatusNoContent)

	ing := startIngest(t, e.dsn)

	// Values that survive a round trip only if nothing along the way
	// rounds: JSON, the DOUBLE column, the API's JSON and CSV.
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC)
	values := []float64{0.1, -273.15, 1e-300, 6.02214076e23, 1.7976931348623157e308, 0, 1.25, -5e-7, 123456789.123456789, 3}
	var sent []measure.Measure
	for i, v := range values {
		m := measure.Measure{Experiment: "flow-exp", Sensor: "hv/module-12/current", Time: t0.Add(time.Duration(i) * time.Minute), Value: v, Unit: "uA"}
		if i%3 == 0 {
			m.Tags = map[string]string{"rack": "r3", "note": `a "quoted", text`}
		}
		sent = append(sent, m)
		sent = append(sent, measure.Measure{Experiment: "flow-exp", Sensor: "temp,inner", Time: t0.Add(time.Duration(i)*time.Minute + time.Microsecond), Value: -v})
	}
	batch, err := measure.Encode(sent[:16])
	if err != nil {
		t.Fatal(err)
	}
	msgs := []queue.Message{{RoutingKey: measure.RoutingKey("flow-exp"), Body: batch, ContentType: measure.ContentType}}
	for _, m := range sent[16:] {
		body, err := measure.EncodeOne(m)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, queue.Message{RoutingKey: measure.RoutingKey("flow-exp"), Body: body, ContentType: measure.ContentType})
	}
	// A mixed batch: the good measure is stored, the bad one dead-lettered.
	good := measure.Measure{Experiment: "flow-exp", Sensor: "τ", Time: t0, Value: 42.5, Unit: "K"}
	sent = append(sent, good)
	mixed := fmt.Sprintf(`{"measures":[{"experiment":"flow-exp","sensor":"τ","time":%q,"value":42.5,"unit":"K"},`+
		`{"experiment":"flow-exp","sensor":"τ","time":%q,"value":"NaN"}]}`, t0.Format(time.RFC3339Nano), t0.Add(time.Second).Format(time.RFC3339Nano))
	msgs = append(msgs, queue.Message{RoutingKey: measure.RoutingKey("flow-exp"), Body: []byte(mixed), ContentType: measure.ContentType})
	ing.publish(t, msgs)
	ing.waitRows(t, e.store, "flow-exp", int64(len(sent)))

	// The API's order: by series (ids from the database), then time.
	seriesOrder := map[string]int{}
	rows, err := e.db.QueryContext(testCtx(t), "SELECT sensor FROM series ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s []byte
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seriesOrder[string(s)] = len(seriesOrder)
	}
	rows.Close()
	slices.SortFunc(sent, func(a, b measure.Measure) int {
		return cmp.Or(cmp.Compare(seriesOrder[a.Sensor], seriesOrder[b.Sensor]), a.Time.Compare(b.Time))
	})
	want := make([]wireMeasure, len(sent))
	for i, m := range sent {
		want[i] = wireMeasure{Sensor: m.Sensor, Time: m.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), Value: m.Value, Unit: m.Unit, Tags: m.Tags}
	}

	// JSON, in pages of 7.
	var got []wireMeasure
	cursor := ""
	for pages := 0; ; pages++ {
		r := e.get(t, "/v1/experiments/flow-exp/measures?limit=7"+cursor, sciFB.token, nil)
		wantStatus(t, "JSON page", r, http.StatusOK)
		var p readPage
		r.decode(t, &p)
		got = append(got, p.Measures...)
		if p.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + url.QueryEscape(p.NextCursor)
		if pages > 10 {
			t.Fatal("too many pages")
		}
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("JSON measures (-want +got):\n%s", diff)
	}

	// CSV, streamed.
	r = e.get(t, "/v1/experiments/flow-exp/measures", sciFB.token, csvAccept)
	wantStatus(t, "CSV", r, http.StatusOK)
	recs := parseCSV(t, r.body)
	if len(recs) != len(want)+1 || !slices.Equal(recs[0], []string{"sensor", "time", "value", "unit", "tags"}) {
		t.Fatalf("CSV has %d records (want %d and a header): %q", len(recs), len(want)+1, recs)
	}
	for i, rec := range recs[1:] {
		w := want[i]
		v, err := strconv.ParseFloat(rec[2], 64)
		if rec[0] != w.Sensor || rec[1] != w.Time || err != nil || v != w.Value || rec[3] != w.Unit {
			t.Errorf("CSV row %d = %q, want %+v", i+1, rec, w)
		}
		if (rec[4] != "") != (w.Tags != nil) || w.Tags != nil && !strings.Contains(rec[4], `"note":"a \"quoted\", text"`) {
			t.Errorf("CSV row %d tags %q, want %v", i+1, rec[4], w.Tags)
		}
	}

	// Downsampled and the sensors.
	r = e.get(t, "/v1/experiments/flow-exp/measures?every=1h&agg=count&sensor=temp,inner", sciFB.token, nil)
	wantStatus(t, "downsampled", r, http.StatusOK)
	var bp bucketsPage
	r.decode(t, &bp)
	if len(bp.Buckets) != 1 || bp.Buckets[0].Count == nil || *bp.Buckets[0].Count != int64(len(values)) || bp.Buckets[0].Time != "2026-11-23T10:00:00.000000Z" {
		t.Errorf("hourly buckets of temp,inner: %s", r.body)
	}
	r = e.get(t, "/v1/experiments/flow-exp/sensors", sciFB.token, nil)
	wantStatus(t, "sensors", r, http.StatusOK)
	if !strings.Contains(string(r.body), `{"sensor":"temp,inner","count":10,"first":"2026-11-23T10:00:00.123457Z","last":"2026-11-23T10:09:00.123457Z"}`) {
		t.Errorf("sensors: %s", r.body)
	}

	// Removed from the experiment: the scientist reads nothing any more and
	// is told its membership was revoked (403); another scientist, never a
	// member, still gets the 404 of an unknown experiment.
	wantStatus(t, "remove member", e.do("DELETE", member, admin.token, nil), http.StatusNoContent)
	stranger := e.signUp(storage.RoleScientist)
	for _, path := range []string{"/v1/experiments/flow-exp/measures", "/v1/experiments/flow-exp/sensors"} {
		for _, h := range []map[string]string{nil, csvAccept} {
			r := e.get(t, path, sciFB.token, h)
			wantStatus(t, "after removal: "+path, r, http.StatusForbidden)
			if p := r.problem(t); !strings.Contains(p.Detail, "revoked") || strings.Contains(string(r.body), "hv/module") {
				t.Errorf("%s after removal: %s", path, r.body)
			}
			wantStatus(t, "never a member: "+path, e.get(t, path, stranger.token, h), http.StatusNotFound)
		}
	}
	wantStatus(t, "member again", e.do("PUT", member, admin.token, nil), http.StatusNoContent)
	wantStatus(t, "reads again", e.get(t, "/v1/experiments/flow-exp/measures?limit=1", sciFB.token, nil), http.StatusOK)
	wantStatus(t, "removed again", e.do("DELETE", member, admin.token, nil), http.StatusNoContent)
	wantStatus(t, "revoked again", e.get(t, "/v1/experiments/flow-exp/measures", sciFB.token, nil), http.StatusForbidden)
	wantStatus(t, "the admin still reads", e.get(t, "/v1/experiments/flow-exp/measures?limit=1", admin.token, nil), http.StatusOK)

	// The reads are in the audit trail: successes, then the refusals.
	var outcomes []string
	for _, ev := range auditEvents(t, e, "measures.read") {
		if ev["user.id"] == strconv.FormatInt(sci.ID, 10) && ev["mymonit.experiment"] == "flow-exp" {
			outcomes = append(outcomes, fmt.Sprint(ev["event.outcome"]))
		}
	}
	if n := len(outcomes); n < 6 || outcomes[0] != "success" || outcomes[n-1] != "failure" || outcomes[n-2] != "success" || outcomes[n-3] != "failure" {
		t.Errorf("audit outcomes of the scientist's reads: %v", outcomes)
	}

	if err := ing.stop(); err != nil {
		t.Errorf("ingest exit after SIGTERM: %v", err)
	}
}

// ingestProc is the ingest service run as a process, with its own queue
// names on the test broker.
type ingestProc struct {
	amqp queue.Config
	pub  *queue.Publisher
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan error
}

// startIngest builds services/ingest and runs `ingest serve` against the
// database of dsn, and waits until it is ready.
func startIngest(t *testing.T, dsn string) *ingestProc {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "..", "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "ingest")
	build := exec.CommandContext(testCtx(t), "go", "build", "-o", bin, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build services/ingest: %v\n%s", err, out)
	}

	p := &ingestProc{
		amqp: testenv.QueueConfig(t, "flow"),
		out:  &testenv.Buffer{},
		done: make(chan error, 1),
	}
	// The publisher declares the whole topology, so nothing published is
	// unroutable whatever ingest is doing.
	p.pub = queue.NewPublisher(queue.PublisherParams{Config: p.amqp, Logger: zap.NewNop(), Producer: "api-flow-test", DeclareTopology: true})
	t.Cleanup(func() { _ = p.pub.Close() })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(append(os.Environ(), config.Environ(p.amqp)...),
		"MYMONIT_MYSQL_DSN="+dsn,
		"MYMONIT_INGEST_HTTP_ADDR="+addr,
		"MYMONIT_INGEST_FLUSH_INTERVAL=20ms",
		"MYMONIT_LOG_LEVEL=info",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("ingest output:\n%s", p.out.String())
		}
	})
	for deadline := time.Now().Add(time.Minute); ; {
		select {
		case err := <-p.done:
			t.Fatalf("ingest exited while starting: %v\n%s", err, p.out.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest not ready within a minute:\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publish sends messages with confirms.
func (p *ingestProc) publish(t *testing.T, msgs []queue.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.pub.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// waitRows waits until the experiment holds n measures, then checks it
// holds no more.
func (p *ingestProc) waitRows(t *testing.T, s *storage.Store, slug string, n int64) {
	t.Helper()
	var got int64
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if got, err = s.CountMeasures(testCtx(t), slug); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			break
		}
	}
	if got != n {
		t.Fatalf("%d measures stored, want %d", got, n)
	}
}

// stop sends SIGTERM and waits for the exit.
func (p *ingestProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("no exit within a minute of SIGTERM:\n%s", p.out.String())
	}
}
