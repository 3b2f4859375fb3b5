package httppush

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mymonit/mymonit/pkg/measure"
)

// KeyPrefix starts every API key, so that a leaked key is recognisable.
const KeyPrefix = "mmk_"

// Producer is one holder of an API key, as stored in the keys file. The key
// itself is not stored, only its SHA-256.
type Producer struct {
	// Name identifies the producer in logs, metrics and responses.
	Name string `json:"name"`
	// KeySHA256 is the hex SHA-256 of the key.
	KeySHA256 string `json:"key_sha256"`
	// Experiments the producer may publish to; "*" allows all.
	Experiments []string `json:"experiments"`
	// Rate is the sustained number of measures per second allowed.
	Rate float64 `json:"rate"`
	// Burst is the most measures accepted at once (and the largest request).
	Burst int `json:"burst"`
}

// Allows reports whether the producer may publish to the experiment.
func (p Producer) Allows(experiment string) bool {
	return slices.Contains(p.Experiments, "*") || slices.Contains(p.Experiments, experiment)
}

func (p Producer) validate() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if h, err := hex.DecodeString(p.KeySHA256); err != nil || len(h) != sha256.Size {
		errs = append(errs, errors.New("key_sha256 is not 64 hex digits"))
	}
	if len(p.Experiments) == 0 {
		errs = append(errs, errors.New(`experiments is empty (list them, or "*" for all)`))
	}
	for _, e := range p.Experiments {
		if e == "*" {
			continue
		}
		if err := measure.ValidateExperiment(e); err != nil {
			errs = append(errs, fmt.Errorf("experiment %q: %w", e, err))
		}
	}
	if p.Rate <= 0 || p.Burst < 1 {
		errs = append(errs, fmt.Errorf("rate %v and burst %d must be positive", p.Rate, p.Burst))
	}
	return errors.Join(errs...)
}

// keysFile is the JSON document of the keys file.
type keysFile struct {
	Producers []Producer `json:"producers"`
}

// Keys holds the producers and finds the one an API key belongs to.
type Keys struct {
	producers []Producer
	hashes    [][]byte
}

// LoadKeys reads the keys file; a missing file is an error that says how to
// create a key.
func LoadKeys(path string) (*Keys, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keys file %s does not exist: create a key with `httppush key create -name NAME -experiments EXP`", path)
	}
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	var f keysFile
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	return NewKeys(f.Producers)
}

// NewKeys checks the producers (names unique, hashes well formed) and
// returns them ready for lookups.
func NewKeys(ps []Producer) (*Keys, error) {
	k := &Keys{}
	seen := map[string]bool{}
	var errs []error
	for i, p := range ps {
		if err := p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("producer %d (%q): %w", i, p.Name, err))
			continue
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("producer %d: name %q is used twice", i, p.Name))
		}
		seen[p.Name] = true
		h, _ := hex.DecodeString(p.KeySHA256)
		k.producers = append(k.producers, p)
		k.hashes = append(k.hashes, h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// Lookup returns the producer holding key. Every stored hash is compared in
// constant time, so the time taken does not depend on which one matches.
func (k *Keys) Lookup(key string) (Producer, bool) {
	h := sha256.Sum256([]byte(key))
	found := -1
	for i, stored := range k.hashes {
		if subtle.ConstantTimeCompare(h[:], stored) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Producer{}, false
	}
	return k.producers[found], true
}

// Producers lists the producers.
func (k *Keys) Producers() []Producer { return slices.Clone(k.producers) }

// NewKey returns a fresh random API key (256 bits) and its hex SHA-256.
func NewKey() (key, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("random key: %w", err)
	}
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	return key, hex.EncodeToString(sum[:]), nil
}

// AddProducer adds p to the keys file (created when missing, mode 0600),
// refusing a name already present, and replaces the file atomically.
func AddProducer(path string, p Producer) error {
	var f keysFile
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("keys file: %w", err)
	default:
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("keys file %s: %w", path, err)
		}
	}
	f.Producers = append(f.Producers, p)
	if _, err := NewKeys(f.Producers); err != nil {
		return err
	}
	return writeKeys(path, f)
}

// RemoveProducer removes the producer named name from the keys file.
func RemoveProducer(path, name string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("keys file: %w", err)
	}
	var f keysFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("keys file %s: %w", path, err)
	}
	n := len(f.Producers)
	f.Producers = slices.DeleteFunc(f.Producers, func(p Producer) bool { return p.Name == name })
	if len(f.Producers) == n {
		return fmt.Errorf("no producer named %q in %s", name, path)
	}
	return writeKeys(path, f)
}

func writeKeys(path string, f keysFile) error {
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return fmt.Errorf("keys file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write keys file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace keys file: %w", err)
	}
	return nil
}
