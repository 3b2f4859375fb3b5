package auth

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenKey is the SHA-256 of a raw token: the cache never holds tokens.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// cache holds verified identities until their deadline, at most max of
// them; when full, the entry inserted first goes. Safe for concurrent use.
type cache struct {
	max int

	mu      sync.Mutex
	entries map[tokenKey]*list.Element // of *cacheEntry
	order   *list.List                 // oldest insert at the front
}

type cacheEntry struct {
	key   tokenKey
	id    Identity
	until time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[tokenKey]*list.Element), order: list.New()}
}

// get returns the identity cached for key if its deadline is after now.
func (c *cache) get(key tokenKey, now time.Time) (Identity, bool) {
	if c.max <= 0 {
		return Identity{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return Identity{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.order.Remove(el)
		delete(c.entries, key)
		return Identity{}, false
	}
	return e.id, true
}

// put caches id under key until the deadline until.
func (c *cache) put(key tokenKey, id Identity, until time.Time) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
		delete(c.entries, key)
	}
	for c.order.Len() >= c.max {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
	c.entries[key] = c.order.PushBack(&cacheEntry{key: key, id: id, until: until})
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
