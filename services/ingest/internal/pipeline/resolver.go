package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/mymonit/mymonit/pkg/storage"
)

// Cache bounds: experiments unknown to the database are asked again after
// unknownTTL, so a newly registered experiment is accepted within that time;
// the series cache is dropped whole when it reaches maxSeries entries.
const (
	unknownTTL = time.Second
	maxSeries  = 200_000
)

// resolver caches experiment and series ids in front of the store. Ids never
// change once given, so positive entries need no expiry.
type resolver struct {
	store Store

	mu      sync.Mutex
	exps    map[string]int64
	unknown map[string]time.Time // slug → when it was found unregistered
	ids     map[storage.SeriesKey]int64
}

func newResolver(s Store) *resolver {
	return &resolver{
		store:   s,
		exps:    make(map[string]int64),
		unknown: make(map[string]time.Time),
		ids:     make(map[storage.SeriesKey]int64),
	}
}

// experiments returns the ids of the registered experiments among slugs.
func (r *resolver) experiments(ctx context.Context, slugs []string) (map[string]int64, error) {
	out := make(map[string]int64, len(slugs))
	var missing []string
	now := time.Now()
	r.mu.Lock()
	for _, s := range slugs {
		if id, ok := r.exps[s]; ok {
			out[s] = id
		} else if at, ok := r.unknown[s]; !ok || now.Sub(at) > unknownTTL {
			missing = append(missing, s)
		}
	}
	r.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	found, err := r.store.ExperimentIDs(ctx, missing)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.unknown) > 10_000 {
		clear(r.unknown)
	}
	for _, s := range missing {
		if id, ok := found[s]; ok {
			r.exps[s] = id
			delete(r.unknown, s)
			out[s] = id
		} else {
			r.unknown[s] = now
		}
	}
	return out, nil
}

// series returns the id of every key, creating missing series.
func (r *resolver) series(ctx context.Context, keys []storage.SeriesKey) (map[storage.SeriesKey]int64, error) {
	out := make(map[storage.SeriesKey]int64, len(keys))
	var missing []storage.SeriesKey
	r.mu.Lock()
	for _, k := range keys {
		if id, ok := r.ids[k]; ok {
			out[k] = id
		} else {
			missing = append(missing, k)
		}
	}
	r.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	found, err := r.store.EnsureSeries(ctx, missing)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids)+len(found) > maxSeries {
		clear(r.ids)
	}
	for k, id := range found {
		r.ids[k] = id
		out[k] = id
	}
	return out, nil
}
