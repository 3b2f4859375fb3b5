package main_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mymonit/mymonit/pkg/measure"
	"github.com/mymonit/mymonit/pkg/queue"
)

// poison is a message the ingest must dead-letter (in whole or in part),
// with the reason it must give and the good measures it must keep.
type poison struct {
	name   string
	body   string
	ctype  string
	reason string // a part of the dead letter's reason header
	keep   int    // good measures in the message
}

func poisons() []poison {
	huge := strings.Repeat("x", 200)
	good := func(i int) string {
		b, _ := measure.EncodeOne(gen(i))
		return string(b)
	}
	return []poison{
		{name: "not json", body: `{"experiment":`, reason: "not JSON"},
		{name: "not an object", body: `[1,2,3]`, reason: "JSON array"},
		{name: "wrong content type", body: good(900), ctype: "text/plain", reason: `content type "text/plain"`},
		{name: "empty batch", body: `{"measures":[]}`, reason: "empty batch"},
		{name: "value is a string", body: `{"experiment":"atlas","sensor":"a","time":"2026-01-02T03:04:05Z","value":"12"}`, reason: "value"},
		{name: "NaN", body: `{"experiment":"atlas","sensor":"a","time":"2026-01-02T03:04:05Z","value":"NaN"}`, reason: "finite"},
		{name: "huge sensor", body: `{"experiment":"atlas","sensor":"` + huge + `","time":"2026-01-02T03:04:05Z","value":1}`, reason: "sensor"},
		{name: "bad time", body: `{"experiment":"atlas","sensor":"a","time":"yesterday","value":1}`, reason: "time"},
		{name: "unknown field", body: `{"experiment":"atlas","sensor":"a","time":"2026-01-02T03:04:05Z","valeu":1}`, reason: "valeu"},
		{name: "unknown experiment", body: `{"experiment":"nope","sensor":"a","time":"2026-01-02T03:04:05Z","value":1}`, reason: `experiment "nope" is not registered`},
		{name: "mixed batch", body: `{"measures":[` + good(901) + `,{"experiment":"atlas","sensor":"a","time":"2026-01-02T03:04:05Z","value":null},` + good(902) + `,{"experiment":"Bad Slug","sensor":"a","time":"2026-01-02T03:04:05Z","value":1}]}`,
			reason: "measure 1: value", keep: 2},
	}
}

func TestPoisonIsDeadLetteredWithReasons(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	ps := poisons()
	var msgs []queue.Message
	ids := map[string]poison{}
	for i, ps := range ps {
		id := fmt.Sprintf("poison-%d", i)
		ids[id] = ps
		ct := ps.ctype
		if ct == "" {
			ct = measure.ContentType
		}
		msgs = append(msgs, queue.Message{RoutingKey: "experiment.atlas", Body: []byte(ps.body), ContentType: ct, MessageID: id})
	}
	// Fuzzed bodies: random bytes and random mutations of a good message.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		b := []byte(`{"experiment":"atlas","sensor":"a","time":"2026-01-02T03:04:05Z","value":1.5}`)
		for range 1 + rng.IntN(4) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		msgs = append(msgs, queue.Message{RoutingKey: "experiment.atlas", Body: b, ContentType: measure.ContentType, MessageID: fmt.Sprintf("fuzz-%d", i)})
	}
	// Good measures around the poison.
	msgs = append(msgs, messages(t, 0, 300, 1)...)
	e.publish(msgs)

	e.waitDeadLetters(len(ps)) // every poison message, plus fuzzed ones that failed
	total, sample, byReason, err := queue.ListDeadLetters(context.Background(), e.amqp, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, d := range sample {
		if ps, ok := ids[d.MessageID]; ok {
			found[d.MessageID] = true
			if !strings.Contains(d.Reason, ps.reason) {
				t.Errorf("%s: reason %q does not mention %q", ps.name, d.Reason, ps.reason)
			}
			if d.OriginalRoutingKey != "experiment.atlas" {
				t.Errorf("%s: original routing key %q", ps.name, d.OriginalRoutingKey)
			}
		} else if !strings.HasPrefix(d.MessageID, "fuzz-") {
			t.Errorf("unexpected dead letter %s: %s", d.MessageID, d.Reason)
		}
		if d.Reason == "" {
			t.Errorf("dead letter %s has no reason", d.MessageID)
		}
	}
	for id, ps := range ids {
		if !found[id] {
			t.Errorf("%s (%s) not dead-lettered", ps.name, id)
		}
	}
	t.Logf("%d dead letters; reasons: %v", total, byReason)

	// The good measures, including the good siblings of the mixed batch, are
	// stored; fuzzed messages that happened to stay valid wrote sensor "a".
	var good int64
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM measures m JOIN series s ON s.id = m.series_id
		WHERE s.sensor LIKE 'detector/%'`).Scan(&good); err != nil {
		t.Fatal(err)
	}
	if good != 302 {
		t.Errorf("good measures stored = %d, want 302", good)
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("ingest exit: %v", err)
	}
}

// waitDeadLetters waits until the dead-letter queue holds at least min
// messages and stops growing.
func (e *env) waitDeadLetters(min int) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, stable := -1, 0
	for time.Now().Before(deadline) {
		n, err := queue.Depth(context.Background(), e.amqp, e.amqp.DeadQueue)
		if err != nil {
			e.t.Fatal(err)
		}
		if n >= min && n == last {
			stable++
			if stable >= 5 {
				return
			}
		} else {
			stable = 0
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("dead-letter queue holds %d, want ≥ %d", last, min)
}

func TestOperatorCommands(t *testing.T) {
	e := newEnv(t)
	p := e.start()
	// Measures for an experiment nobody registered yet are dead-lettered.
	var msgs []queue.Message
	for i := range 5 {
		m := gen(i)
		m.Experiment = "cms-ecal"
		b, err := measure.EncodeOne(m)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, queue.Message{RoutingKey: measure.RoutingKey("cms-ecal"), Body: b, ContentType: measure.ContentType})
	}
	e.publish(msgs)
	e.waitDeadLetters(5)

	out, err := e.command("dlq", "list")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	if !strings.Contains(out, "5 dead letters") || !strings.Contains(out, `experiment "cms-ecal" is not registered`) {
		t.Errorf("dlq list output:\n%s", out)
	}
	// The fix: register the experiment, then replay.
	if out, err := e.command("experiment", "create", "cms-ecal", "-name", "CMS ECAL"); err != nil || !strings.Contains(out, "created experiment") {
		t.Fatalf("experiment create: %v\n%s", err, out)
	}
	if out, err := e.command("experiment", "create", "cms-ecal"); err == nil {
		t.Errorf("creating an existing experiment succeeded:\n%s", out)
	}
	if out, err := e.command("experiment", "list"); err != nil || !strings.Contains(out, "cms-ecal") {
		t.Errorf("experiment list: %v\n%s", err, out)
	}
	time.Sleep(1100 * time.Millisecond) // past the unknown-experiment cache
	out, err = e.command("dlq", "replay", "-reason", "not registered")
	if err != nil || !strings.Contains(out, "replayed 5") {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	var n int64
	for time.Now().Before(deadline) {
		if err := e.db.QueryRow(`SELECT COUNT(*) FROM measures m JOIN series s ON s.id = m.series_id
			JOIN experiments x ON x.id = s.experiment_id WHERE x.slug = 'cms-ecal'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 5 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n != 5 {
		t.Errorf("replayed measures stored = %d, want 5", n)
	}
	if depth, err := queue.Depth(context.Background(), e.amqp, e.amqp.DeadQueue); err != nil || depth != 0 {
		t.Errorf("dead-letter queue holds %d after replay (%v)", depth, err)
	}
	if err := p.stop(30 * time.Second); err != nil {
		t.Errorf("ingest exit: %v", err)
	}

	// Bad configuration is refused with the variable named.
	e.extra = []string{"MYMONIT_INGEST_BATCH_SIZE=0"}
	if out, err := e.command("serve"); err == nil || !strings.Contains(out, "MYMONIT_INGEST_BATCH_SIZE") {
		t.Errorf("serve with a bad batch size: %v\n%s", err, out)
	}
}
