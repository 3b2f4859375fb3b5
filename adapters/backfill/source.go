// Package backfill reads measures from CSV and JSON-lines files, publishes
// them through the sink, reports bad rows by line number, and records a
// checkpoint of the confirmed part of each file so that an interrupted
// backfill resumes where it stopped.
package backfill

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mymonit/mymonit/pkg/measure"
)

// Row is what a Source read: the measures of one line (or CSV record) or
// the reason it was refused.
type Row struct {
	// Line is the 1-based line where the row starts.
	Line int
	// End is the byte offset just after the row.
	End int64
	// Measures read from the row (a JSON line may hold a batch).
	Measures []measure.Measure
	// Errors say why the row, or items of it, were refused.
	Errors []string
}

// Source yields rows until io.EOF.
type Source interface {
	Next() (Row, error)
}

// Formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// TimeFormats of the CSV time column.
const (
	TimeRFC3339 = "rfc3339"
	TimeUnix    = "unix"
	TimeUnixMs  = "unix_ms"
)

// CSVOptions map CSV columns to measures.
type CSVOptions struct {
	// Experiment is used when there is no experiment column or its cell is
	// empty.
	Experiment string
	// TimeFormat of the time column: rfc3339 (default), unix (seconds, with
	// an optional fraction) or unix_ms.
	TimeFormat string
}

// Column names of the CSV header with a meaning; every other column is a tag.
var csvColumns = []string{"experiment", "sensor", "time", "value", "unit"}

// csvSource reads CSV with a header.
type csvSource struct {
	r        *csv.Reader
	base     int64 // offset of the reader's start in the file
	baseLine int   // lines before the reader's start
	opts     CSVOptions
	idx      map[string]int
	tags     []int // columns that are tags
	header   []string
}

// ReadCSVHeader reads the header record of r and returns it with the offset
// and line count just after it.
func ReadCSVHeader(r io.Reader) (header []string, end int64, lines int, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	h, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, 0, errors.New("empty CSV: want a header line (experiment,sensor,time,value,unit,...)")
		}
		return nil, 0, 0, fmt.Errorf("CSV header: %w", err)
	}
	l, _ := cr.FieldPos(len(h) - 1)
	return append([]string(nil), h...), cr.InputOffset(), l, nil
}

// NewCSV reads CSV records from r, which starts at byte offset base and
// after baseLine lines of the file. A nil header is read from r first (the
// start of a file); a resumed file passes the header ReadCSVHeader read.
func NewCSV(r io.Reader, header []string, base int64, baseLine int, opts CSVOptions) (Source, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	if header == nil {
		h, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty CSV: want a header line (experiment,sensor,time,value,unit,...)")
		}
		if err != nil {
			return nil, fmt.Errorf("CSV header: %w", err)
		}
		header = append([]string(nil), h...)
	}
	s := &csvSource{opts: opts, base: base, baseLine: baseLine, idx: map[string]int{}, header: header}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
		if _, dup := s.idx[name]; dup {
			return nil, fmt.Errorf("CSV header: column %q appears twice", name)
		}
		s.idx[name] = i
		isField := false
		for _, c := range csvColumns {
			if name == c {
				isField = true
			}
		}
		if !isField {
			if name == "" {
				return nil, fmt.Errorf("CSV header: column %d has no name", i+1)
			}
			s.tags = append(s.tags, i)
		}
	}
	var missing []string
	for _, c := range []string{"sensor", "time", "value"} {
		if _, ok := s.idx[c]; !ok {
			missing = append(missing, c)
		}
	}
	if _, ok := s.idx["experiment"]; !ok && opts.Experiment == "" {
		missing = append(missing, "experiment (or -experiment)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("CSV header %q lacks the column(s) %s", strings.Join(header, ","), strings.Join(missing, ", "))
	}
	switch opts.TimeFormat {
	case "", TimeRFC3339, TimeUnix, TimeUnixMs:
	default:
		return nil, fmt.Errorf("time format %q: want rfc3339, unix or unix_ms", opts.TimeFormat)
	}
	cr.ReuseRecord = true
	s.r = cr
	return s, nil
}

// Header returns the header of a CSV source (for the checkpoint).
func (s *csvSource) Header() []string { return s.header }

func (s *csvSource) Next() (Row, error) {
	rec, err := s.r.Read()
	row := Row{End: s.base + s.r.InputOffset()}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			row.Line = s.baseLine + pe.StartLine
			row.Errors = []string{pe.Err.Error()}
			return row, nil
		}
		return Row{}, err
	}
	line, _ := s.r.FieldPos(0) // only valid after a successful Read
	row.Line = s.baseLine + line
	if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
		return row, nil // blank line
	}
	if len(rec) != len(s.header) {
		row.Errors = []string{fmt.Sprintf("%d fields, the header has %d", len(rec), len(s.header))}
		return row, nil
	}
	m, errs := s.measure(rec)
	if len(errs) > 0 {
		row.Errors = errs
		return row, nil
	}
	row.Measures = []measure.Measure{m}
	return row, nil
}

func (s *csvSource) cell(rec []string, col string) (string, bool) {
	i, ok := s.idx[col]
	if !ok {
		return "", false
	}
	return strings.TrimSpace(rec[i]), true
}

func (s *csvSource) measure(rec []string) (measure.Measure, []string) {
	var m measure.Measure
	var errs []string
	m.Experiment, _ = s.cell(rec, "experiment")
	if m.Experiment == "" {
		m.Experiment = s.opts.Experiment
	}
	m.Sensor, _ = s.cell(rec, "sensor")
	m.Unit, _ = s.cell(rec, "unit")
	ts, _ := s.cell(rec, "time")
	t, err := parseTime(ts, s.opts.TimeFormat)
	if err != nil {
		errs = append(errs, "time: "+err.Error())
	}
	m.Time = t
	v, _ := s.cell(rec, "value")
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil:
		errs = append(errs, fmt.Sprintf("value: %q is not a number", cut(v)))
	case math.IsNaN(f) || math.IsInf(f, 0):
		errs = append(errs, fmt.Sprintf("value: must be a finite number, got %q", cut(v)))
	}
	m.Value = f
	for _, i := range s.tags {
		if v := rec[i]; v != "" {
			if m.Tags == nil {
				m.Tags = make(map[string]string, len(s.tags))
			}
			m.Tags[strings.TrimSpace(s.header[i])] = v
		}
	}
	return m, errs
}

func parseTime(s, format string) (time.Time, error) {
	switch format {
	case TimeUnix:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
			return time.Time{}, fmt.Errorf("%q is not a Unix time in seconds", cut(s))
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	case TimeUnixMs:
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms > 1e15 || ms < -1e15 {
			return time.Time{}, fmt.Errorf("%q is not a Unix time in milliseconds", cut(s))
		}
		return time.UnixMilli(ms).UTC(), nil
	default:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not RFC 3339", cut(s))
		}
		return t, nil
	}
}

func cut(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}

// jsonlSource reads one v1 message (a measure or a batch) per line.
type jsonlSource struct {
	r    *bufio.Reader
	off  int64
	line int
}

// NewJSONL reads JSON lines from r, which starts at byte offset base and
// after baseLine lines of the file.
func NewJSONL(r io.Reader, base int64, baseLine int) Source {
	return &jsonlSource{r: bufio.NewReaderSize(r, 64*1024), off: base, line: baseLine}
}

func (s *jsonlSource) Next() (Row, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.off += int64(len(chunk))
		if !tooLong {
			if len(buf)+len(chunk) > measure.MaxMessageBytes+2 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Row{}, err
		}
		if errors.Is(err, io.EOF) && len(chunk) == 0 && len(buf) == 0 && !tooLong {
			return Row{}, io.EOF
		}
		break
	}
	s.line++
	row := Row{Line: s.line, End: s.off}
	if tooLong {
		row.Errors = []string{fmt.Sprintf("longer than %d bytes", measure.MaxMessageBytes)}
		return row, nil
	}
	body := bytes.TrimSpace(buf)
	if len(body) == 0 {
		return row, nil
	}
	d, err := measure.Decode(body)
	if err != nil {
		row.Errors = []string{err.Error()}
		return row, nil
	}
	row.Measures = d.Measures
	for _, rj := range d.Rejected {
		row.Errors = append(row.Errors, rj.Reason)
	}
	return row, nil
}
