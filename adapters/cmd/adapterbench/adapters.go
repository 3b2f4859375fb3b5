package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mymonit/mymonit/adapters/backfill"
	"github.com/mymonit/mymonit/adapters/httppush"
	"github.com/mymonit/mymonit/adapters/lineproto"
	"github.com/mymonit/mymonit/adapters/mqtt"
	"github.com/mymonit/mymonit/adapters/promscrape"
	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

// benchExperiment is the experiment of every measure: its routing key is
// bound to the phase's queue.
const benchExperiment = "bench"

// maxMQTTBacklog bounds the messages published to Mosquitto and not yet
// handed to the sink by the bridge: Mosquitto keeps at most
// max_queued_messages (1000 by default) for a session and drops the rest.
const maxMQTTBacklog = 200

// phaseSink is a started sink on a connected publisher of its own.
type phaseSink struct {
	*sink.Sink
	pub *queue.Publisher
}

// startSink returns a sink of the adapters' default settings, but for the
// batch size, publishing to cfg.
func startSink(ctx context.Context, cfg queue.Config, batchSize int, flush time.Duration, producer string) (*phaseSink, error) {
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Producer: producer})
	if err := pub.Connect(ctx); err != nil {
		_ = pub.Close()
		return nil, fmt.Errorf("connect the publisher: %w", err)
	}
	set := sink.DefaultSettings()
	set.BatchSize = batchSize
	set.FlushInterval = flush
	s, err := sink.New(sink.Params{Settings: set, Publisher: pub, Producer: producer})
	if err == nil {
		err = s.Start(ctx)
	}
	if err != nil {
		_ = pub.Close()
		return nil, fmt.Errorf("start the sink: %w", err)
	}
	return &phaseSink{Sink: s, pub: pub}, nil
}

// close flushes the sink, waits for its last confirms and closes the
// publisher.
func (p *phaseSink) close(ctx context.Context) error {
	err := p.Sink.Close(ctx)
	return errors.Join(err, p.pub.Close())
}

// timed runs workers calling f until d has passed since the start, and
// returns the measures f reported confirmed and the time until the last call
// returned.
func timed(ctx context.Context, workers int, d time.Duration, f func(ctx context.Context, worker int) (int, error)) (int, time.Duration, error) {
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for w := range workers {
		g.Go(func() error {
			for time.Since(start) < d {
				k, err := f(gctx, w)
				if err != nil {
					return err
				}
				n.Add(int64(k))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return int(n.Load()), time.Since(start), nil
}

// post sends body and fails unless the answer has status want.
func post(ctx context.Context, c *http.Client, url, contentType string, header http.Header, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %s, want %d: %.300s", url, resp.Status, want, answer)
	}
	return nil
}

func httpClient(workers int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: time.Minute}
}

// viaLineproto posts line-protocol bodies of o.lines lines to the lineproto
// handler served on 127.0.0.1, from o.clients clients, for o.duration. A 204
// comes after RabbitMQ confirmed every measure of the request.
func viaLineproto(ctx context.Context, cfg queue.Config, o options, batchSize int) (int, time.Duration, error) {
	s, err := startSink(ctx, cfg, batchSize, o.flush, "lineproto")
	if err != nil {
		return 0, 0, err
	}
	defer s.close(ctx)
	h := lineproto.NewHandler(s, lineproto.Mapping{SensorTags: []string{lineproto.AllTags}}, 32<<20, zap.NewNop())
	srv := httptest.NewServer(h.Routes())
	defer srv.Close()
	bodies := make([][]byte, o.clients)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for w := range bodies {
		var b []byte
		for i := range o.lines {
			b = fmt.Appendf(b, "detector,module=m%d voltage=%d %d\n", i%100, i, base+int64(w*o.lines+i)*1000)
		}
		bodies[w] = b
	}
	c := httpClient(o.clients)
	url := srv.URL + "/write?db=" + benchExperiment + "&precision=ns"
	return timed(ctx, o.clients, o.duration, func(ctx context.Context, w int) (int, error) {
		if err := post(ctx, c, url, "text/plain; charset=utf-8", nil, bodies[w], http.StatusNoContent); err != nil {
			return 0, err
		}
		return o.lines, nil
	})
}

// viaHTTPPush posts v1 batches of o.lines measures with a created API key to
// the httppush handler, from o.clients clients, for o.duration. A 200 comes
// after RabbitMQ confirmed every measure of the request.
func viaHTTPPush(ctx context.Context, cfg queue.Config, o options, batchSize int) (int, time.Duration, error) {
	s, err := startSink(ctx, cfg, batchSize, o.flush, "httppush")
	if err != nil {
		return 0, 0, err
	}
	defer s.close(ctx)
	key, hash, err := httppush.NewKey()
	if err != nil {
		return 0, 0, err
	}
	keys, err := httppush.NewKeys([]httppush.Producer{{
		Name: "adapterbench", KeySHA256: hash, Experiments: []string{benchExperiment}, Rate: 1e9, Burst: measure.MaxBatch,
	}})
	if err != nil {
		return 0, 0, err
	}
	srv := httptest.NewServer(httppush.NewHandler(s, keys, zap.NewNop()).Routes())
	defer srv.Close()
	bodies := make([][]byte, o.clients)
	for w := range bodies {
		ms := make([]measure.Measure, o.lines)
		for i := range ms {
			ms[i] = gen(w*o.lines + i)
		}
		if bodies[w], err = measure.Encode(ms); err != nil {
			return 0, 0, err
		}
	}
	c := httpClient(o.clients)
	auth := http.Header{"Authorization": {"Bearer " + key}}
	return timed(ctx, o.clients, o.duration, func(ctx context.Context, w int) (int, error) {
		if err := post(ctx, c, srv.URL+"/v1/measures", "application/json", auth, bodies[w], http.StatusOK); err != nil {
			return 0, err
		}
		return o.lines, nil
	})
}

// viaFiles backfills a generated CSV of rows rows through backfill.Run, with
// its checkpoint, as the files command does; the time includes opening and
// reading the file.
func viaFiles(ctx context.Context, cfg queue.Config, o options, batchSize, rows int) (int, time.Duration, error) {
	dir, err := os.MkdirTemp("", "adapterbench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bench.csv")
	b := []byte("experiment,sensor,time,value,unit,rack\n")
	for i := range rows {
		m := gen(i)
		b = fmt.Appendf(b, "%s,%s,%s,%s,%s,r%d\n", m.Experiment, m.Sensor, m.Time.Format(time.RFC3339Nano),
			strconv.FormatFloat(m.Value, 'g', -1, 64), m.Unit, i%8)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return 0, 0, err
	}
	s, err := startSink(ctx, cfg, batchSize, o.flush, "files")
	if err != nil {
		return 0, 0, err
	}
	defer s.close(ctx)
	cp := path + ".checkpoint"
	start := time.Now()
	src, from, f, err := backfill.Open(path, backfill.FormatCSV, backfill.CSVOptions{}, cp, true)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	final, err := backfill.Run(ctx, s, src, from, backfill.Options{Name: "bench.csv", Checkpoint: cp, Report: io.Discard})
	if err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	if final.Published != int64(rows) || final.BadRows != 0 {
		return 0, 0, fmt.Errorf("backfill confirmed %d measures and refused %d rows, want %d and 0", final.Published, final.BadRows, rows)
	}
	return rows, d, nil
}

// exporter serves series gauges in the Prometheus text format.
func exporter(series int) http.Handler {
	var b []byte
	b = append(b, "# HELP bench_value A benchmark gauge.\n# TYPE bench_value gauge\n"...)
	for i := range series {
		b = fmt.Appendf(b, "bench_value{module=\"m%d\",series=\"%d\"} %d\n", i%100, i, i)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(b)
	})
}

// viaPromscrape scrapes an exporter of o.series series over and over for
// o.duration, from o.clients targets (one label each) at once, as
// Scraper.Run does for each target without waiting for its interval: scrape,
// add the measures to the sink, wait for their confirms.
func viaPromscrape(ctx context.Context, cfg queue.Config, o options, batchSize int) (int, time.Duration, error) {
	s, err := startSink(ctx, cfg, batchSize, o.flush, "promscrape")
	if err != nil {
		return 0, 0, err
	}
	defer s.close(ctx)
	srv := httptest.NewServer(exporter(o.series))
	defer srv.Close()
	targets := make([]promscrape.Target, o.clients)
	for w := range targets {
		targets[w] = promscrape.Target{
			URL: srv.URL + "/metrics", Experiment: benchExperiment, Labels: map[string]string{"instance": "w" + strconv.Itoa(w)},
			Interval: time.Second, Timeout: time.Second,
		}
	}
	sc, err := promscrape.New(promscrape.Params{Targets: targets, Sink: s, Client: httpClient(o.clients)})
	if err != nil {
		return 0, 0, err
	}
	return timed(ctx, o.clients, o.duration, func(ctx context.Context, w int) (int, error) {
		res, err := sc.Scrape(ctx, targets[w])
		if err != nil {
			return 0, err
		}
		if len(res.Measures) != o.series {
			return 0, fmt.Errorf("scrape mapped %d measures (%d rejected), want %d", len(res.Measures), len(res.Rejected), o.series)
		}
		t, err := s.Add(ctx, res.Measures...)
		if err != nil {
			return 0, err
		}
		if err := t.Wait(ctx); err != nil {
			return 0, err
		}
		return len(res.Measures), nil
	})
}

// countingSink passes the bridge's measures on to the sink and keeps their
// tickets, to tell when all of them are confirmed.
type countingSink struct {
	*phaseSink
	n       atomic.Int64
	mu      sync.Mutex
	tickets []*sink.Ticket
	// open are the tickets not yet settled; maxOpen is the most there were
	// at once: the messages the bridge held unconfirmed.
	open    []*sink.Ticket
	maxOpen int
}

func (c *countingSink) Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error) {
	t, err := c.phaseSink.Add(ctx, ms...)
	if err == nil {
		c.mu.Lock()
		c.tickets = append(c.tickets, t)
		c.open = slices.DeleteFunc(append(c.open, t), func(t *sink.Ticket) bool {
			select {
			case <-t.Done():
				return true
			default:
				return false
			}
		})
		c.maxOpen = max(c.maxOpen, len(c.open))
		c.mu.Unlock()
	}
	c.n.Add(int64(len(ms)))
	return t, err
}

// wait waits until n measures were added and all of them are confirmed.
func (c *countingSink) wait(ctx context.Context, n int64) error {
	for c.n.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the bridge passed on %d of %d measures: %w", c.n.Load(), n, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	c.mu.Lock()
	ts := c.tickets
	c.mu.Unlock()
	for _, t := range ts {
		if err := t.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// mqttBroker is the MQTT broker of the bench: MYMONIT_TEST_MQTT_URL, by
// default the local Mosquitto.
func mqttBroker() string {
	if u := os.Getenv("MYMONIT_TEST_MQTT_URL"); u != "" {
		return u
	}
	return "tcp://127.0.0.1:1883"
}

// viaMQTT runs an mqtt.Bridge in a persistent session of its own on the MQTT
// broker, subscribed to a unique topic prefix, and publishes plain-number
// payloads to it with QoS 1 for o.duration, keeping at most maxMQTTBacklog
// messages ahead of the bridge; the time runs until the bridge's measures
// are all confirmed. The bridge acknowledges a message to the broker only
// after its confirm, so the broker's in-flight window over the confirm
// latency bounds the rate (Mosquitto 2.0 lets an in-order acknowledger
// exceed max_inflight_messages: each ack of the oldest frees up to 20 more).
func viaMQTT(ctx context.Context, cfg queue.Config, o options, batchSize int) (int, time.Duration, error) {
	s, err := startSink(ctx, cfg, batchSize, o.flush, "mqttbridge")
	if err != nil {
		return 0, 0, err
	}
	defer s.close(ctx)
	broker := mqttBroker()
	prefix := testenv.Name("adapterbench")
	rules, err := mqtt.NewRules(mqtt.RuleSpec{Topic: prefix + "/+", Experiment: benchExperiment, Sensor: "{1}", Unit: "V"})
	if err != nil {
		return 0, 0, err
	}
	id := testenv.Name("adapterbench-bridge")
	defer forgetSession(broker, id)
	cs := &countingSink{phaseSink: s}
	b, err := mqtt.New(mqtt.Params{
		Config: mqtt.Config{Broker: broker, ClientID: id, KeepAlive: 30 * time.Second, MaxReconnectInterval: time.Second, MaxPayload: 1 << 20, MaxPending: 10000},
		Rules:  rules, Sink: cs,
	})
	if err != nil {
		return 0, 0, err
	}
	if err := b.Start(ctx); err != nil {
		return 0, 0, fmt.Errorf("start the bridge on %s (MYMONIT_TEST_MQTT_URL): %w", broker, err)
	}
	defer b.Stop(ctx)
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(testenv.Name("adapterbench-pub")))
	if tok := pub.Connect(); tok.Wait() && tok.Error() != nil {
		return 0, 0, fmt.Errorf("connect the publisher to %s: %w", broker, tok.Error())
	}
	defer pub.Disconnect(100)
	start := time.Now()
	var sent int64
	var toks []paho.Token
	for time.Since(start) < o.duration {
		if sent-cs.n.Load() >= maxMQTTBacklog {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		toks = append(toks, pub.Publish(prefix+"/s"+strconv.FormatInt(sent%100, 10), 1, false, strconv.FormatInt(sent, 10)))
		sent++
		if len(toks) == 100 {
			if err := waitTokens(toks); err != nil {
				return 0, 0, err
			}
			toks = toks[:0]
		}
	}
	if err := waitTokens(toks); err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := cs.wait(wctx, sent); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	cs.mu.Lock()
	fmt.Fprintf(o.stderr, "mqtt, batch size %d: at most %d messages received and not yet confirmed at once\n", batchSize, cs.maxOpen)
	cs.mu.Unlock()
	return int(sent), d, nil
}

func waitTokens(toks []paho.Token) error {
	for _, t := range toks {
		if t.Wait() && t.Error() != nil {
			return fmt.Errorf("publish to MQTT: %w", t.Error())
		}
	}
	return nil
}

// forgetSession removes the persistent session id from the broker.
func forgetSession(broker, id string) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true))
	if tok := c.Connect(); tok.Wait() && tok.Error() == nil {
		c.Disconnect(0)
	}
}
