package promscrape

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/mymonit/mymonit/pkg/config"
	"github.com/mymonit/mymonit/pkg/measure"
)

// Config is the scraper's part of the environment (parsed by pkg/config).
// The targets themselves are listed in the file it names.
type Config struct {
	File     string        `env:"MYMONIT_PROMSCRAPE_CONFIG" help:"YAML (or JSON) file listing the targets: url, experiment, optional labels, drop_labels, interval and timeout (see promscrape -help); required, here or as -config"`
	Interval time.Duration `env:"MYMONIT_PROMSCRAPE_INTERVAL" default:"15s" min:"100ms" max:"24h" help:"time between two scrapes of a target that sets no interval of its own"`
	Timeout  time.Duration `env:"MYMONIT_PROMSCRAPE_TIMEOUT" default:"10s" min:"10ms" max:"24h" help:"longest scrape of a target that sets no timeout of its own (at most the interval)"`
	MaxBody  int64         `env:"MYMONIT_PROMSCRAPE_MAX_BODY_BYTES" default:"16777216" min:"1024" help:"largest exposition accepted (uncompressed bytes); a larger one fails the scrape"`
}

// Validate checks the rules that span fields.
func (c Config) Validate() error {
	if c.Timeout > c.Interval {
		return fmt.Errorf("MYMONIT_PROMSCRAPE_TIMEOUT=%s: must not be longer than MYMONIT_PROMSCRAPE_INTERVAL=%s", c.Timeout, c.Interval)
	}
	return nil
}

// BindFlags defines flags that override the environment, with its values
// as defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.File, "config", c.File, "targets file, YAML or JSON (MYMONIT_PROMSCRAPE_CONFIG)")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "default time between two scrapes of a target (MYMONIT_PROMSCRAPE_INTERVAL)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "default longest scrape, at most the interval (MYMONIT_PROMSCRAPE_TIMEOUT)")
	fs.Int64Var(&c.MaxBody, "max-body-bytes", c.MaxBody, "largest exposition accepted (MYMONIT_PROMSCRAPE_MAX_BODY_BYTES)")
}

// Check validates the configuration once flags were parsed (they bypass the
// tags' bounds); each error names the variable and its flag.
func (c Config) Check() error {
	var errs []error
	if c.File == "" {
		errs = append(errs, errors.New("MYMONIT_PROMSCRAPE_CONFIG (-config) is required: the file listing the targets to scrape"))
	}
	if c.Interval < 100*time.Millisecond || c.Interval > 24*time.Hour {
		errs = append(errs, fmt.Errorf("MYMONIT_PROMSCRAPE_INTERVAL (-interval) %s is not between 100ms and 24h", c.Interval))
	}
	if c.Timeout < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("MYMONIT_PROMSCRAPE_TIMEOUT (-timeout) %s is shorter than 10ms", c.Timeout))
	} else if c.Timeout > c.Interval {
		errs = append(errs, fmt.Errorf("MYMONIT_PROMSCRAPE_TIMEOUT (-timeout) %s is longer than MYMONIT_PROMSCRAPE_INTERVAL (-interval) %s", c.Timeout, c.Interval))
	}
	if c.MaxBody < 1024 {
		errs = append(errs, fmt.Errorf("MYMONIT_PROMSCRAPE_MAX_BODY_BYTES (-max-body-bytes) %d is smaller than 1024", c.MaxBody))
	}
	return errors.Join(errs...)
}

// Target is one endpoint to scrape.
type Target struct {
	// URL of the exposition, http or https.
	URL string `yaml:"url"`
	// Experiment receives the target's measures.
	Experiment string `yaml:"experiment"`
	// Labels are added to every sample of the target (see the mapping).
	Labels map[string]string `yaml:"labels"`
	// DropLabels are exposed labels left out of the series (sensor and
	// tags), to keep sensors within 128 bytes.
	DropLabels []string `yaml:"drop_labels"`
	// Interval between two scrapes; 0 takes the configured default.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one scrape; 0 takes the configured default.
	Timeout time.Duration `yaml:"timeout"`
}

// Name is the target as logs and metrics show it: its URL with any password
// masked.
func (t Target) Name() string { return config.MaskCredentials(t.URL) }

// targetsFile is the layout of the targets file.
type targetsFile struct {
	Targets []Target `yaml:"targets"`
}

// LoadTargets reads the targets file named by c.File (see ParseTargets).
func LoadTargets(c Config) ([]Target, error) {
	data, err := os.ReadFile(c.File)
	if err != nil {
		return nil, fmt.Errorf("MYMONIT_PROMSCRAPE_CONFIG: %w", err)
	}
	ts, err := ParseTargets(data, c.Interval, c.Timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.File, err)
	}
	return ts, nil
}

// ParseTargets reads a targets file, YAML or JSON:
//
//	targets:
//	  - url: http://127.0.0.1:9100/metrics
//	    experiment: lab-node
//	    labels: {instance: node1}
//	    drop_labels: [job]
//	    interval: 30s
//	    timeout: 5s
//
// Targets without an interval or timeout get interval and timeout. Unknown
// fields are refused; every error names the target (by its position and line)
// and the field. Two targets feeding the same experiment with the same labels
// are refused too: their series would overwrite each other.
func ParseTargets(data []byte, interval, timeout time.Duration) ([]Target, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f targetsFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no targets: the file is empty")
		}
		return nil, err
	}
	// The same document again, as nodes, for the line of each target.
	var nodes struct {
		Targets []yaml.Node `yaml:"targets"`
	}
	_ = yaml.Unmarshal(data, &nodes)
	line := func(i int) string {
		if i < len(nodes.Targets) {
			return fmt.Sprintf("targets[%d] (line %d)", i, nodes.Targets[i].Line)
		}
		return fmt.Sprintf("targets[%d]", i)
	}
	if len(f.Targets) == 0 {
		return nil, errors.New("no targets: list them under targets:")
	}
	var errs []error
	seen := map[string]int{}
	for i := range f.Targets {
		t := &f.Targets[i]
		if t.Interval == 0 {
			t.Interval = interval
		}
		if t.Timeout == 0 {
			t.Timeout = min(timeout, t.Interval)
		}
		for _, err := range t.validate() {
			errs = append(errs, fmt.Errorf("%s: %w", line(i), err))
		}
		key := t.Experiment + "\x00" + SeriesName("", t.Labels)
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%s: same experiment %q and labels as targets[%d]: their series would overwrite each other; give them distinct labels (for example instance)", line(i), t.Experiment, j))
		} else {
			seen[key] = i
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f.Targets, nil
}

// reservedLabels are set by the mapping itself.
var reservedLabels = []string{"le", "quantile"}

func (t Target) validate() []error {
	var errs []error
	u, err := url.Parse(t.URL)
	switch {
	case t.URL == "":
		errs = append(errs, errors.New("url: missing"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: scheme must be http or https", config.MaskCredentials(t.URL)))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("url %q: no host", config.MaskCredentials(t.URL)))
	}
	if t.Experiment == "" {
		errs = append(errs, errors.New("experiment: missing"))
	} else if err := measure.ValidateExperiment(t.Experiment); err != nil {
		errs = append(errs, err)
	}
	keys := make([]string, 0, len(t.Labels))
	for k := range t.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := t.Labels[k]
		switch {
		case !model.LegacyValidation.IsValidLabelName(k):
			errs = append(errs, fmt.Errorf("labels: %q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", k))
		case strings.HasPrefix(k, "__"):
			errs = append(errs, fmt.Errorf("labels: %q: names starting with __ are reserved", k))
		case slices.Contains(reservedLabels, k):
			errs = append(errs, fmt.Errorf("labels: %q is set by the mapping of histograms and summaries", k))
		case len(k) > measure.MaxTagKeyBytes:
			errs = append(errs, fmt.Errorf("labels: %q: longer than %d bytes", k, measure.MaxTagKeyBytes))
		case len(v) > measure.MaxTagValueBytes:
			errs = append(errs, fmt.Errorf("labels: %s: value longer than %d bytes", k, measure.MaxTagValueBytes))
		}
	}
	for _, k := range t.DropLabels {
		if slices.Contains(reservedLabels, k) {
			errs = append(errs, fmt.Errorf("drop_labels: %q is set by the mapping of histograms and summaries", k))
		}
	}
	if len(t.Labels) > measure.MaxTags {
		errs = append(errs, fmt.Errorf("labels: %d labels, at most %d", len(t.Labels), measure.MaxTags))
	}
	if t.Interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("interval: %s, must be at least 100ms", t.Interval))
	}
	if t.Timeout <= 0 || t.Timeout > t.Interval {
		errs = append(errs, fmt.Errorf("timeout: %s, must be positive and at most the interval (%s)", t.Timeout, t.Interval))
	}
	return errs
}
