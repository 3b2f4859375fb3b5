package pipeline

import (
	"hash/maphash"
	"slices"
)

// turn is a batch's place in the ack order of its session.
//
// A batch is acked with one ack(multiple) of its last delivery, which acks
// every unacked delivery of the session up to it, the earlier batches'
// included. So a batch acks only once its predecessor settled (done), and
// with multiple only if every earlier delivery was acked (clean): after an
// abandoned batch, whose deliveries must stay unacked for the broker to
// redeliver them, the later batches ack their deliveries one by one.
type turn struct {
	done  chan struct{} // closed once the batch is acked or abandoned
	clean bool          // set before done closes: every delivery up to the batch's last is acked
}

// settledTurn is the turn before a session's first batch.
func settledTurn() *turn {
	t := &turn{done: make(chan struct{}), clean: true}
	close(t.done)
	return t
}

// settle records the outcome of the batch and lets its successor ack.
func (t *turn) settle(clean bool) {
	t.clean = clean
	close(t.done)
}

// fence orders the commits of batches holding the same measure identity
// (experiment, sensor, time): a batch commits after every earlier batch of
// the session that holds one of its identities and is not written yet, so
// that the later write of an identity is the one stored although batches
// commit concurrently. A fence is immutable once its batch is sealed, except
// for written.
type fence struct {
	ids     []uint64      // sorted hashes of the batch's identities
	written chan struct{} // closed once the batch committed or was abandoned
}

// newFence hashes the identities of b's measures. A hash collision only
// makes a batch wait for one it need not wait for.
func (p *Pipeline) newFence(b *batch) *fence {
	ids := make([]uint64, 0, b.measures)
	for i := range b.items {
		for _, m := range b.items[i].measures {
			ids = append(ids, maphash.Comparable(p.seed, identity{m.Experiment, m.Sensor, m.Time.UnixMicro()}))
		}
	}
	slices.Sort(ids)
	return &fence{ids: ids, written: make(chan struct{})}
}

// identity is what identifies a stored measure (times are stored to the
// microsecond).
type identity struct {
	experiment, sensor string
	micros             int64
}

// overlaps reports whether f and g share an identity.
func (f *fence) overlaps(g *fence) bool {
	a, b := f.ids, g.ids
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0] < b[0]:
			a = a[1:]
		case a[0] > b[0]:
			b = b[1:]
		default:
			return true
		}
	}
	return false
}

// written drops the fences whose batches are written.
func written(fences []*fence) []*fence {
	return slices.DeleteFunc(fences, func(f *fence) bool {
		select {
		case <-f.written:
			return true
		default:
			return false
		}
	})
}
