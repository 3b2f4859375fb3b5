package storage_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mymonit/mymonit/pkg/storage"
)

func TestExperiments(t *testing.T) {
	clock := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
	s, _ := newStore(t, storage.StoreParams{Now: func() time.Time { return clock }})
	ctx := testCtx(t)

	in := storage.Experiment{Slug: "lake-2026.a_1", Name: "Lake Geneva ☀", Description: "Temperatures; 'quoted'"}
	got, err := s.CreateExperiment(ctx, in)
	if err != nil {
		t.Fatalf("CreateExperiment: %v", err)
	}
	stamp := clock.UTC().Truncate(time.Microsecond)
	want := in
	want.ID, want.CreatedAt, want.UpdatedAt = got.ID, stamp, stamp
	if got.ID <= 0 {
		t.Errorf("CreateExperiment returned id %d", got.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateExperiment (-want +got):\n%s", diff)
	}
	read, err := s.ExperimentBySlug(ctx, in.Slug)
	if err != nil {
		t.Fatalf("ExperimentBySlug: %v", err)
	}
	if diff := cmp.Diff(want, read); diff != "" {
		t.Errorf("ExperimentBySlug (-want +got):\n%s", diff)
	}

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			err  error
			want error
		}{
			{"duplicate slug", func() error { _, err := s.CreateExperiment(ctx, storage.Experiment{Slug: in.Slug}); return err }(), storage.ErrConflict},
			{"unknown slug", func() error { _, err := s.ExperimentBySlug(ctx, "nope"); return err }(), storage.ErrNotFound},
			{"slug with a trailing space", func() error { _, err := s.ExperimentBySlug(ctx, in.Slug+" "); return err }(), storage.ErrNotFound},
			{"slug case differs", func() error { _, err := s.ExperimentBySlug(ctx, "LAKE-2026.A_1"); return err }(), storage.ErrNotFound},
			{"uppercase slug", func() error { _, err := s.CreateExperiment(ctx, storage.Experiment{Slug: "Lake"}); return err }(), storage.ErrInvalid},
			{"trailing space", func() error {
				_, err := s.CreateExperiment(ctx, storage.Experiment{Slug: "lake-2026.a_1 "})
				return err
			}(), storage.ErrInvalid},
			{"empty slug", func() error { _, err := s.CreateExperiment(ctx, storage.Experiment{}); return err }(), storage.ErrInvalid},
			{"slug too long", func() error {
				_, err := s.CreateExperiment(ctx, storage.Experiment{Slug: "a" + fmt.Sprintf("%064d", 0)})
				return err
			}(), storage.ErrInvalid},
			{"name too long", func() error {
				_, err := s.CreateExperiment(ctx, storage.Experiment{Slug: "long-name", Name: fmt.Sprintf("%0201d", 0)})
				return err
			}(), storage.ErrInvalid},
		}
		for _, tt := range tests {
			if !errors.Is(tt.err, tt.want) {
				t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
			}
		}
	})

	t.Run("list and ids", func(t *testing.T) {
		b := createExperiment(t, s, "b-exp")
		a := createExperiment(t, s, "a-exp")
		list, err := s.ListExperiments(ctx)
		if err != nil {
			t.Fatalf("ListExperiments: %v", err)
		}
		var slugs []string
		for _, e := range list {
			slugs = append(slugs, e.Slug)
		}
		if diff := cmp.Diff([]string{"a-exp", "b-exp", "lake-2026.a_1"}, slugs); diff != "" {
			t.Errorf("ListExperiments slugs (-want +got):\n%s", diff)
		}
		ids, err := s.ExperimentIDs(ctx, []string{"b-exp", "a-exp", "unknown", "b-exp", "A-EXP", "a-exp ", ""})
		if err != nil {
			t.Fatalf("ExperimentIDs: %v", err)
		}
		if diff := cmp.Diff(map[string]int64{"a-exp": a.ID, "b-exp": b.ID}, ids); diff != "" {
			t.Errorf("ExperimentIDs (-want +got):\n%s", diff)
		}
		ids, err = s.ExperimentIDs(ctx, nil)
		if err != nil || len(ids) != 0 {
			t.Errorf("ExperimentIDs(nil) = %v, %v; want empty", ids, err)
		}
	})
}

func TestExperimentIDsManySlugs(t *testing.T) {
	s, _ := newStore(t, storage.StoreParams{})
	want := map[string]int64{}
	var slugs []string
	for i := range 1100 { // beyond one IN list of 500
		slug := fmt.Sprintf("exp-%04d", i)
		slugs = append(slugs, slug)
		if i%2 == 0 {
			want[slug] = createExperiment(t, s, slug).ID
		}
	}
	got, err := s.ExperimentIDs(testCtx(t), slugs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExperimentIDs (-want +got):\n%s", diff)
	}
}

func TestEnsureSeries(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e1 := createExperiment(t, s, "one")
	e2 := createExperiment(t, s, "two")

	// Names that a PAD SPACE or case-insensitive collation would merge.
	keys := []storage.SeriesKey{
		{e1.ID, "temp"}, {e1.ID, "temp "}, {e1.ID, "Temp"}, {e1.ID, "température/°C"},
		{e2.ID, "temp"}, {e1.ID, "temp"}, // a duplicate in the input
	}
	first, err := s.EnsureSeries(ctx, keys)
	if err != nil {
		t.Fatalf("EnsureSeries: %v", err)
	}
	if len(first) != 5 {
		t.Fatalf("EnsureSeries returned %d ids, want 5: %v", len(first), first)
	}
	distinct := map[int64]bool{}
	for _, id := range first {
		distinct[id] = true
	}
	if len(distinct) != 5 {
		t.Errorf("5 series got %d distinct ids: %v", len(distinct), first)
	}

	// Idempotent: the same ids, no new rows, also when mixed with new keys.
	more := append(keys, storage.SeriesKey{ExperimentID: e2.ID, Sensor: "pressure"})
	second, err := s.EnsureSeries(ctx, more)
	if err != nil {
		t.Fatalf("second EnsureSeries: %v", err)
	}
	for k, id := range first {
		if second[k] != id {
			t.Errorf("series %v: id %d, then %d", k, id, second[k])
		}
	}
	if second[more[len(more)-1]] == 0 || len(second) != 6 {
		t.Errorf("second EnsureSeries = %v, want the 5 old ids and a new one", second)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM series"); n != 6 {
		t.Errorf("series has %d rows, want 6", n)
	}

	empty, err := s.EnsureSeries(ctx, nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("EnsureSeries(nil) = %v, %v", empty, err)
	}

	errTests := []struct {
		name string
		key  storage.SeriesKey
		want error
	}{
		{"unknown experiment", storage.SeriesKey{ExperimentID: e2.ID + 1000, Sensor: "x"}, storage.ErrNotFound},
		{"no experiment", storage.SeriesKey{Sensor: "x"}, storage.ErrInvalid},
		{"empty sensor", storage.SeriesKey{ExperimentID: e1.ID}, storage.ErrInvalid},
		{"sensor of 129 bytes", storage.SeriesKey{ExperimentID: e1.ID, Sensor: fmt.Sprintf("%0129d", 0)}, storage.ErrInvalid},
		{"sensor not UTF-8", storage.SeriesKey{ExperimentID: e1.ID, Sensor: "a\xffb"}, storage.ErrInvalid},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			ids, err := s.EnsureSeries(ctx, []storage.SeriesKey{{e1.ID, "temp"}, tt.key})
			if !errors.Is(err, tt.want) {
				t.Errorf("EnsureSeries = %v, %v; want %v", ids, err, tt.want)
			}
		})
	}
	// 128 bytes of multi-byte characters fit.
	long := storage.SeriesKey{ExperimentID: e1.ID, Sensor: strings.Repeat("é", 64)}
	if ids, err := s.EnsureSeries(ctx, []storage.SeriesKey{long}); err != nil || ids[long] == 0 {
		t.Errorf("EnsureSeries of a 128-byte name = %v, %v", ids, err)
	}
}

func TestEnsureSeriesConcurrent(t *testing.T) {
	s, db := newStore(t, storage.StoreParams{})
	ctx := testCtx(t)
	e := createExperiment(t, s, "busy")
	const sensors, callers = 1200, 8 // more than one insert batch of 500
	all := make([]storage.SeriesKey, sensors)
	for i := range all {
		all[i] = storage.SeriesKey{ExperimentID: e.ID, Sensor: fmt.Sprintf("sensor-%04d", i)}
	}
	results := make([]map[storage.SeriesKey]int64, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c := range callers {
		// Each caller asks for an overlapping, shuffled two thirds of the keys.
		keys := make([]storage.SeriesKey, 0, sensors)
		for i, k := range all {
			if i%3 != c%3 {
				keys = append(keys, k)
			}
		}
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		wg.Go(func() {
			<-start
			results[c], errs[c] = s.EnsureSeries(ctx, keys)
		})
	}
	close(start)
	wg.Wait()

	agreed := map[storage.SeriesKey]int64{}
	for c := range callers {
		if errs[c] != nil {
			t.Fatalf("caller %d: %v", c, errs[c])
		}
		for k, id := range results[c] {
			if prev, ok := agreed[k]; ok && prev != id {
				t.Errorf("series %v: callers disagree: %d vs %d", k, prev, id)
			}
			agreed[k] = id
		}
	}
	if len(agreed) != sensors {
		t.Errorf("callers saw %d series, want %d", len(agreed), sensors)
	}
	if n := queryInt(t, db, "SELECT COUNT(*) FROM series"); n != sensors {
		t.Errorf("series has %d rows, want %d", n, sensors)
	}
	// The ids are those in the table.
	again, err := s.EnsureSeries(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(agreed, again, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ids after the race (-concurrent +fresh):\n%s", diff)
	}
}
