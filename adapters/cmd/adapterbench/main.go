// Command adapterbench is the `make bench` harness of the adapters. In one
// run on one machine it measures the broker's raw publish-with-confirms rate,
// the sink's rate and each adapter's, and prints them as ratios to the raw
// rate:
//
//	raw        amqp091 publishing pre-encoded single-measure messages to a
//	           quorum queue, confirm mode, up to -window unconfirmed: the
//	           broker's limit in messages/s (the baseline)
//	single     measures through sink.Add with -batch-size 1: one message per
//	           measure, confirmed, in measures/s
//	batched    the same with -batch-size (default 1000) measures per message
//
// then, for every adapter of -adapters, its real input path in-process, with
// a sink of the adapters' default settings (flush interval 50ms) at batch
// size 1 and at -batch-size, in confirmed measures/s:
//
//	lineproto  POST /write of -lines lines to lineproto.Handler served on
//	           127.0.0.1, from -clients clients, for -duration
//	httppush   POST /v1/measures of -lines measures (one v1 batch) with a
//	           created API key to httppush.Handler, likewise
//	files      backfill.Open and backfill.Run of a generated CSV (with its
//	           checkpoint) of -file-rows-single / -file-rows rows
//	promscrape Scraper.Scrape of an exporter of -series text-format series by
//	           -clients targets at once, each scrape added to the sink and
//	           confirmed before the next, as Scraper.Run does, for -duration
//	mqtt       an mqtt.Bridge in a persistent session on the MQTT broker
//	           (MYMONIT_TEST_MQTT_URL, default the local Mosquitto), fed QoS 1
//	           plain-number messages on a unique topic prefix for -duration;
//	           the broker's in-flight window caps it, since a message is
//	           acknowledged only after its confirm
//
// Each phase gets a fresh, randomly named quorum queue and exchange on the
// broker named by MYMONIT_TEST_AMQP_URL (default guest on 127.0.0.1:5672),
// deleted afterwards. Phases repeat for -rounds and the medians are printed;
// a round's ratio compares phases run next to each other.
//
// Usage, from adapters: go run ./cmd/adapterbench [-h]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/benchkit"
	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
	"github.com/mymonit/mymonit/pkg/testenv"
)

type options struct {
	rounds    int
	single    int
	batched   int
	batchSize int
	window    int
	addSize   int
	adapters  string
	duration  time.Duration
	flush     time.Duration
	clients   int
	lines     int
	series    int
	fileRows1 int
	fileRowsN int
	stderr    io.Writer
}

func main() { benchkit.Main("adapterbench", run) }

// adapterPhase is one adapter's input path, run with a given batch size.
type adapterPhase struct {
	name  string
	label string
	run   func(ctx context.Context, cfg queue.Config, o options, batchSize int) (int, time.Duration, error)
}

func adapterPhases(o options) []adapterPhase {
	return []adapterPhase{
		{"lineproto", fmt.Sprintf("lineproto, POST /write of %d lines, %d clients", o.lines, o.clients), viaLineproto},
		{"httppush", fmt.Sprintf("httppush, POST /v1/measures of %d measures, %d clients", o.lines, o.clients), viaHTTPPush},
		{"files", "files, CSV backfill with checkpoint", func(ctx context.Context, cfg queue.Config, o options, bs int) (int, time.Duration, error) {
			rows := o.fileRowsN
			if bs == 1 {
				rows = o.fileRows1
			}
			return viaFiles(ctx, cfg, o, bs, rows)
		}},
		{"promscrape", fmt.Sprintf("promscrape, text exposition of %d series, %d targets", o.series, o.clients), viaPromscrape},
		{"mqtt", "mqttbridge, QoS 1 from Mosquitto (acks after confirms)", viaMQTT},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := options{stderr: stderr}
	fs := flag.NewFlagSet("adapterbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of every phase; medians are printed")
	fs.IntVar(&o.single, "single", 20000, "measures (= messages) of the raw and single phases")
	fs.IntVar(&o.batched, "batched", 200000, "measures of the batched phase")
	fs.IntVar(&o.batchSize, "batch-size", 1000, "measures per message of the batched phases")
	fs.IntVar(&o.window, "window", 1000, "unconfirmed messages in flight in the raw phase")
	fs.IntVar(&o.addSize, "add", 100, "measures per sink.Add call")
	fs.StringVar(&o.adapters, "adapters", "lineproto,httppush,files,promscrape,mqtt", "adapters to measure, comma-separated; empty: the sink alone")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "length of a time-bound adapter phase (lineproto, httppush, promscrape, mqtt)")
	fs.DurationVar(&o.flush, "flush-interval", sink.DefaultSettings().FlushInterval, "sink flush interval of the adapter phases (the adapters' default)")
	fs.IntVar(&o.clients, "clients", 4, "concurrent HTTP clients (lineproto, httppush) and targets (promscrape)")
	fs.IntVar(&o.lines, "lines", 5000, "lines (lineproto) or measures (httppush) per request")
	fs.IntVar(&o.series, "series", 1000, "series of the promscrape exporter")
	fs.IntVar(&o.fileRows1, "file-rows-single", 10000, "CSV rows of the files phase with 1 measure/message")
	fs.IntVar(&o.fileRowsN, "file-rows", 200000, "CSV rows of the files phase with batched messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, a := range strings.Split(o.adapters, ",") {
		if a = strings.TrimSpace(a); a != "" {
			want[a] = true
		}
	}
	var phases []adapterPhase
	for _, p := range adapterPhases(o) {
		if want[p.name] {
			phases = append(phases, p)
			delete(want, p.name)
		}
	}
	for a := range want {
		return fmt.Errorf("-adapters: unknown adapter %q (lineproto, httppush, files, promscrape, mqtt)", a)
	}
	url := testenv.AMQPURL()
	var raw, single, batched, rSingle, rBatched []float64
	aRate := map[string][]float64{}
	aRatio := map[string][]float64{}
	for r := range o.rounds {
		rw, err := phase(ctx, url, func(cfg queue.Config) (int, time.Duration, error) { return rawPublish(ctx, cfg, o.single, o.window) })
		if err != nil {
			return fmt.Errorf("raw: %w", err)
		}
		s1, err := phase(ctx, url, func(cfg queue.Config) (int, time.Duration, error) { return viaSink(ctx, cfg, o.single, 1, o.addSize) })
		if err != nil {
			return fmt.Errorf("single: %w", err)
		}
		sb, err := phase(ctx, url, func(cfg queue.Config) (int, time.Duration, error) {
			return viaSink(ctx, cfg, o.batched, o.batchSize, o.addSize)
		})
		if err != nil {
			return fmt.Errorf("batched: %w", err)
		}
		raw, single, batched = append(raw, rw), append(single, s1), append(batched, sb)
		rSingle, rBatched = append(rSingle, s1/rw), append(rBatched, sb/rw)
		fmt.Fprintf(stderr, "round %d: raw %.0f msg/s, single %.0f measures/s, batched %.0f measures/s\n", r+1, rw, s1, sb)
		for _, p := range phases {
			for _, bs := range []int{1, o.batchSize} {
				key := fmt.Sprintf("%s/%d", p.name, bs)
				rate, err := phase(ctx, url, func(cfg queue.Config) (int, time.Duration, error) { return p.run(ctx, cfg, o, bs) })
				if err != nil {
					return fmt.Errorf("%s, batch size %d: %w", p.name, bs, err)
				}
				aRate[key], aRatio[key] = append(aRate[key], rate), append(aRatio[key], rate/rw)
				fmt.Fprintf(stderr, "round %d: %s, batch size %d: %.0f measures/s (%.2f × raw)\n", r+1, p.name, bs, rate, rate/rw)
			}
		}
	}
	fmt.Fprintf(stdout, "adapters sink → RabbitMQ with confirms (quorum queue), median of %d rounds\n", o.rounds)
	fmt.Fprintf(stdout, "| path | rate | ratio |\n|---|---|---|\n")
	fmt.Fprintf(stdout, "| broker raw publish with confirms, 1 measure/message | %.0f msg/s | baseline |\n", median(raw))
	fmt.Fprintf(stdout, "| sink, 1 measure/message | %.0f measures/s | %.2f × raw |\n", median(single), median(rSingle))
	fmt.Fprintf(stdout, "| sink, %d measures/message | %.0f measures/s | %.1f × raw |\n", o.batchSize, median(batched), median(rBatched))
	for _, p := range phases {
		for _, bs := range []int{1, o.batchSize} {
			key := fmt.Sprintf("%s/%d", p.name, bs)
			fmt.Fprintf(stdout, "| %s, %s | %.0f measures/s | %.2f × raw |\n", p.label, perMessage(bs), median(aRate[key]), median(aRatio[key]))
		}
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(stdout, "load average at the end: %s\n", strings.Join(strings.Fields(string(l))[:3], " "))
	}
	return nil
}

func perMessage(batchSize int) string {
	if batchSize == 1 {
		return "1 measure/message"
	}
	return fmt.Sprintf("up to %d measures/message", batchSize)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// phase runs f against a fresh topology and returns its rate per second.
func phase(ctx context.Context, url string, f func(queue.Config) (int, time.Duration, error)) (float64, error) {
	cfg := queue.Config{
		URL: url, Exchange: testenv.Name("bench_measures"), Queue: testenv.Name("bench_q"),
		DeadExchange: testenv.Name("bench_dead"), DeadQueue: testenv.Name("bench_dead"),
		QueueType: queue.QueueTypeQuorum, DeliveryLimit: 20,
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, fmt.Errorf("dial the broker (MYMONIT_TEST_AMQP_URL): %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, q := range []string{cfg.Queue, cfg.DeadQueue} {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
		for _, x := range []string{cfg.Exchange, cfg.DeadExchange} {
			_ = ch.ExchangeDelete(x, false, false)
		}
	}()
	if err := cfg.Topology().Declare(ch); err != nil {
		return 0, err
	}
	n, d, err := f(cfg)
	if err != nil {
		return 0, err
	}
	return float64(n) / d.Seconds(), nil
}

func gen(i int) measure.Measure {
	return measure.Measure{
		Experiment: "bench", Sensor: fmt.Sprintf("detector/s%d", i%100),
		Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Microsecond), Value: float64(i), Unit: "V",
	}
}

// rawPublish publishes n single-measure messages with amqp091 alone.
func rawPublish(ctx context.Context, cfg queue.Config, n, window int) (int, time.Duration, error) {
	bodies := make([][]byte, n)
	for i := range n {
		b, err := measure.EncodeOne(gen(i))
		if err != nil {
			return 0, 0, err
		}
		bodies[i] = b
	}
	conn, err := amqp.Dial(cfg.URL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, err
	}
	if err := ch.Confirm(false); err != nil {
		return 0, 0, err
	}
	rk := measure.RoutingKey("bench")
	pending := make([]*amqp.DeferredConfirmation, 0, window)
	start := time.Now()
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, cfg.Exchange, rk, true, false, amqp.Publishing{
			ContentType: measure.ContentType, DeliveryMode: amqp.Persistent, Body: bodies[i],
		})
		if err != nil {
			return 0, 0, err
		}
		pending = append(pending, dc)
		if len(pending) == window || i == n-1 {
			for _, p := range pending {
				ok, err := p.WaitContext(ctx)
				if err != nil {
					return 0, 0, err
				}
				if !ok {
					return 0, 0, errors.New("nacked")
				}
			}
			pending = pending[:0]
		}
	}
	return n, time.Since(start), nil
}

// viaSink adds n measures to a sink, addSize per call, and waits for every
// confirm.
func viaSink(ctx context.Context, cfg queue.Config, n, batchSize, addSize int) (int, time.Duration, error) {
	ms := make([]measure.Measure, n)
	for i := range ms {
		ms[i] = gen(i)
	}
	pub := queue.NewPublisher(queue.PublisherParams{Config: cfg, Producer: "adapterbench"})
	defer pub.Close()
	if err := pub.Connect(ctx); err != nil {
		return 0, 0, err
	}
	set := sink.DefaultSettings()
	set.BatchSize = batchSize
	set.FlushInterval = 5 * time.Millisecond
	set.Buffer = max(set.Buffer, 4*batchSize)
	s, err := sink.New(sink.Params{Settings: set, Publisher: pub, Producer: "adapterbench"})
	if err != nil {
		return 0, 0, err
	}
	if err := s.Start(ctx); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	var tickets []*sink.Ticket
	for i := 0; i < n; i += addSize {
		t, err := s.Add(ctx, ms[i:min(i+addSize, n)]...)
		if err != nil {
			return 0, 0, err
		}
		tickets = append(tickets, t)
	}
	if err := s.Close(ctx); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	for _, t := range tickets {
		if err := t.Wait(ctx); err != nil {
			return 0, 0, err
		}
	}
	return n, d, nil
}
