package backfill_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mymonit/mymonit/adapters/backfill"
	"github.com/mymonit/mymonit/adapters/internal/amqptest"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

func rows(t *testing.T, src backfill.Source) []backfill.Row {
	t.Helper()
	var out []backfill.Row
	for {
		r, err := src.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestCSV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   backfill.CSVOptions
		body   string
		want   []measure.Measure
		errs   map[int]string // line -> reason substring
		header string         // error of NewCSV
	}{
		{
			name: "columns in any order, extra columns are tags",
			body: "Value,sensor,rack,time,experiment,unit,note\n1.5,hv/1,r3,2026-11-23T10:00:00Z,atlas,uA,\n2,hv/2,,2026-11-23T11:00:00+01:00,cms,,hello\n",
			want: []measure.Measure{
				{Experiment: "atlas", Sensor: "hv/1", Time: t0, Value: 1.5, Unit: "uA", Tags: map[string]string{"rack": "r3"}},
				{Experiment: "cms", Sensor: "hv/2", Time: t0, Value: 2, Tags: map[string]string{"note": "hello"}},
			},
		},
		{
			name: "default experiment, unix times",
			opts: backfill.CSVOptions{Experiment: "dflt", TimeFormat: backfill.TimeUnix},
			body: "sensor,time,value\ns,1795428000.5,3\n",
			want: []measure.Measure{{Experiment: "dflt", Sensor: "s", Time: t0.Add(500 * time.Millisecond), Value: 3}},
		},
		{
			name: "unix_ms",
			opts: backfill.CSVOptions{Experiment: "dflt", TimeFormat: backfill.TimeUnixMs},
			body: "sensor,time,value\r\ns,1795428000000,3\r\n",
			want: []measure.Measure{{Experiment: "dflt", Sensor: "s", Time: t0, Value: 3}},
		},
		{
			name: "bad rows by line",
			opts: backfill.CSVOptions{Experiment: "dflt"},
			body: "sensor,time,value\ns,2026-11-23T10:00:00Z,1\ns,yesterday,1\ns,2026-11-23T10:00:00Z,abc\ns,2026-11-23T10:00:00Z\n\ns,2026-11-23T10:00:00Z,NaN\ns,2026-11-23T10:00:00Z,2\n",
			want: []measure.Measure{
				{Experiment: "dflt", Sensor: "s", Time: t0, Value: 1},
				{Experiment: "dflt", Sensor: "s", Time: t0, Value: 2},
			},
			errs: map[int]string{
				3: `time: "yesterday" is not RFC 3339`,
				4: `value: "abc" is not a number`,
				5: "2 fields, the header has 3",
				7: "value: must be a finite number",
			},
		},
		{name: "missing columns", body: "sensor,value\n", header: "lacks the column(s) time, experiment (or -experiment)"},
		{name: "empty", body: "", header: "empty CSV"},
		{name: "duplicate column", body: "sensor,time,value,Value\n", opts: backfill.CSVOptions{Experiment: "e"}, header: `column "value" appears twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, err := backfill.NewCSV(strings.NewReader(tc.body), nil, 0, 0, tc.opts)
			if tc.header != "" {
				if err == nil || !strings.Contains(err.Error(), tc.header) {
					t.Fatalf("NewCSV: %v, want %q", err, tc.header)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []measure.Measure
			errs := map[int]string{}
			for _, r := range rows(t, src) {
				got = append(got, r.Measures...)
				if len(r.Errors) > 0 {
					errs[r.Line] = strings.Join(r.Errors, "; ")
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("measures (-want +got):\n%s", diff)
			}
			if len(errs) != len(tc.errs) {
				t.Errorf("errors %v, want %v", errs, tc.errs)
			}
			for line, want := range tc.errs {
				if !strings.Contains(errs[line], want) {
					t.Errorf("line %d: %q, want %q", line, errs[line], want)
				}
			}
		})
	}
}

func TestJSONL(t *testing.T) {
	t.Parallel()
	body := `{"experiment":"a","sensor":"s","time":"2026-11-23T10:00:00Z","value":1}
not json

{"measures":[{"experiment":"a","sensor":"s2","time":"2026-11-23T10:00:00Z","value":2},{"experiment":"a","sensor":"s3","time":"2026-11-23T10:00:00Z","value":"x"}]}
{"experiment":"a","sensor":"s4","time":"2026-11-23T10:00:00Z","value":4}`
	var lines []int
	var sensors []string
	errs := map[int]string{}
	var ends []int64
	for _, r := range rows(t, backfill.NewJSONL(strings.NewReader(body), 0, 0)) {
		lines = append(lines, r.Line)
		ends = append(ends, r.End)
		for _, m := range r.Measures {
			sensors = append(sensors, m.Sensor)
		}
		if len(r.Errors) > 0 {
			errs[r.Line] = strings.Join(r.Errors, "; ")
		}
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"s", "s2", "s4"}, sensors); diff != "" {
		t.Errorf("sensors (-want +got):\n%s", diff)
	}
	if !strings.Contains(errs[2], "not JSON") || !strings.Contains(errs[4], "measure 1: value") || len(errs) != 2 {
		t.Errorf("errors %v", errs)
	}
	if ends[len(ends)-1] != int64(len(body)) {
		t.Errorf("last offset %d, want %d", ends[len(ends)-1], len(body))
	}
}

// stallingPublisher confirms the first allow Publish calls, then never
// again.
type stallingPublisher struct {
	mu    sync.Mutex
	allow int
	got   []measure.Measure
}

func (p *stallingPublisher) Publish(ctx context.Context, msgs ...queue.Message) error {
	p.mu.Lock()
	if p.allow == 0 {
		p.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	p.allow--
	defer p.mu.Unlock()
	for _, m := range msgs {
		d, err := measure.Decode(m.Body)
		if err != nil {
			return err
		}
		p.got = append(p.got, d.Measures...)
	}
	return nil
}

func newSink(t *testing.T, pub sink.Publisher, batch int) *sink.Sink {
	t.Helper()
	set := sink.DefaultSettings()
	set.BatchSize = batch
	set.InFlight = 1
	set.PublishTimeout = time.Hour
	s, err := sink.New(sink.Params{Settings: set, Publisher: pub, Producer: "files"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestResume interrupts a backfill whose publisher stops confirming: the
// checkpoint covers only confirmed rows, and a second run publishes the
// rest, so that together every row is published.
func TestResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "data.csv")
	var b bytes.Buffer
	b.WriteString("experiment,sensor,time,value\n")
	const n = 5000
	for i := range n {
		fmt.Fprintf(&b, "e,s,%s,%d\n", t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cp := path + ".checkpoint"

	pub1 := &stallingPublisher{allow: 2} // 2 calls of up to 8 messages of 500
	s1 := newSink(t, pub1, 500)
	src, start, f, err := backfill.Open(path, backfill.FormatCSV, backfill.CSVOptions{}, cp, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	go func() { // stops the run once the publisher stalls
		for ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			if s1.Buffered() > 0 && func() bool { pub1.mu.Lock(); defer pub1.mu.Unlock(); return pub1.allow == 0 }() {
				cancel()
				return
			}
		}
	}()
	_, err = backfill.Run(ctx, s1, src, start, backfill.Options{Name: "data.csv", Checkpoint: cp, ChunkSize: 250})
	f.Close()
	cancel()
	closeCtx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = s1.Close(closeCtx)
	ccancel()
	if err == nil {
		t.Fatal("the interrupted run reported success")
	}
	saved, ok, err := backfill.ReadCheckpoint(cp)
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	if saved.Complete || saved.Published > int64(len(pub1.got)) || saved.Published == 0 {
		t.Fatalf("checkpoint %+v after %d confirmed measures", saved, len(pub1.got))
	}
	if saved.Line != int(saved.Published)+1 {
		t.Errorf("checkpoint line %d, published %d (+1 header line)", saved.Line, saved.Published)
	}

	pub2 := &stallingPublisher{allow: 1 << 30}
	s2 := newSink(t, pub2, 500)
	src, start, f, err = backfill.Open(path, backfill.FormatCSV, backfill.CSVOptions{}, cp, false)
	if err != nil {
		t.Fatal(err)
	}
	if start.Offset != saved.Offset {
		t.Fatalf("resumed at %d, checkpoint %d", start.Offset, saved.Offset)
	}
	final, err := backfill.Run(context.Background(), s2, src, start, backfill.Options{Name: "data.csv", Checkpoint: cp})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	_ = s2.Close(context.Background())
	if !final.Complete || final.Published != n {
		t.Errorf("final checkpoint %+v, want complete with %d published", final, n)
	}
	seen := map[float64]bool{}
	for _, m := range append(pub1.got, pub2.got...) {
		seen[m.Value] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct measures published over both runs, want %d", len(seen), n)
	}
	if _, _, _, err := backfill.Open(path, backfill.FormatCSV, backfill.CSVOptions{}, cp, false); err != backfill.ErrComplete {
		t.Errorf("Open after completion: %v, want ErrComplete", err)
	}
}

// TestBackfillToRabbitMQ publishes a CSV file with bad rows through the real
// broker: the good rows arrive exactly, the bad ones are reported by line.
func TestBackfillToRabbitMQ(t *testing.T) {
	t.Parallel()
	cfg := amqptest.Config(t)
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Producer: "files"})
	t.Cleanup(func() { _ = pub.Close() })
	s := newSink(t, pub, 100)
	path := filepath.Join(t.TempDir(), "in.csv")
	body := "experiment,sensor,time,value,unit,rack\n" +
		"atlas,t1,2026-11-23T10:00:00Z,1,C,r1\n" +
		"atlas,t2,2026-11-23T10:00:00Z,oops,C,r1\n" +
		"Bad Exp,t3,2026-11-23T10:00:00Z,3,C,r1\n" +
		"cms,t4,2026-11-23T10:00:00Z,4,,\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	src, start, f, err := backfill.Open(path, backfill.FormatCSV, backfill.CSVOptions{}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var report bytes.Buffer
	final, err := backfill.Run(context.Background(), s, src, start, backfill.Options{Name: "in.csv", Report: &report})
	if err != nil {
		t.Fatal(err)
	}
	if final.BadRows != 2 || final.Published != 2 {
		t.Errorf("final %+v", final)
	}
	wantReport := "in.csv:3: value: \"oops\" is not a number\nin.csv:4: experiment: "
	if !strings.HasPrefix(report.String(), wantReport) {
		t.Errorf("report %q, want prefix %q", report.String(), wantReport)
	}
	want := []measure.Measure{
		{Experiment: "atlas", Sensor: "t1", Time: t0, Value: 1, Unit: "C", Tags: map[string]string{"rack": "r1"}},
		{Experiment: "cms", Sensor: "t4", Time: t0, Value: 4},
	}
	got := amqptest.Measures(t, amqptest.Collect(t, cfg, len(want)))
	if diff := cmp.Diff(amqptest.Sort(want), amqptest.Sort(got)); diff != "" {
		t.Errorf("measures on the queue (-want +got):\n%s", diff)
	}
}
