package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mymonit/mymonit/adapters/sink"
	"github.com/mymonit/mymonit/pkg/measure"
)

// Sink receives the measures; *sink.Sink implements it.
type Sink interface {
	Add(ctx context.Context, ms ...measure.Measure) (*sink.Ticket, error)
	Reject(reason string, n int)
}

// ReasonBadRow is the rejection reason of rows that do not map to a measure.
const ReasonBadRow = "bad_row"

// Checkpoint records how far a file has been published: every row before
// Offset was either confirmed by the broker or reported as bad.
type Checkpoint struct {
	// Source is the file's absolute path.
	Source string `json:"source"`
	// Format is csv or jsonl.
	Format string `json:"format"`
	// Header is the CSV header, checked again on resume.
	Header []string `json:"header,omitempty"`
	// Offset is the byte offset up to which the file is done.
	Offset int64 `json:"offset"`
	// Line is the number of lines before Offset.
	Line int `json:"line"`
	// Published counts the measures confirmed so far.
	Published int64 `json:"published"`
	// BadRows counts the rows reported as bad so far.
	BadRows int64 `json:"bad_rows"`
	// Complete is set once the whole file is done.
	Complete bool `json:"complete"`
	// UpdatedAt is when the checkpoint was written.
	UpdatedAt time.Time `json:"updated_at"`
}

// ReadCheckpoint reads a checkpoint file; a missing one yields ok false.
func ReadCheckpoint(path string) (cp Checkpoint, ok bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint %s: %w (delete it or use -restart)", path, err)
	}
	return cp, true, nil
}

// WriteCheckpoint replaces the checkpoint file atomically (write, sync,
// rename).
func WriteCheckpoint(path string, cp Checkpoint) error {
	cp.UpdatedAt = time.Now().UTC()
	raw, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace checkpoint: %w", err)
	}
	return nil
}

// ErrComplete is returned by Open when the checkpoint says the file was
// already published entirely.
var ErrComplete = errors.New("already published entirely (checkpoint complete)")

// Open opens path as a Source of the format, resuming after the checkpoint
// at cpPath when there is one (and restart is false). It returns the
// checkpoint to continue from, and the file, which the caller closes.
func Open(path, format string, opts CSVOptions, cpPath string, restart bool) (Source, Checkpoint, *os.File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Checkpoint{}, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Checkpoint{}, nil, err
	}
	fail := func(err error) (Source, Checkpoint, *os.File, error) {
		f.Close()
		return nil, Checkpoint{}, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	start := Checkpoint{Source: abs, Format: format}
	if cpPath != "" && !restart {
		cp, ok, err := ReadCheckpoint(cpPath)
		if err != nil {
			return fail(err)
		}
		if ok {
			switch {
			case cp.Source != abs || cp.Format != format:
				return fail(fmt.Errorf("checkpoint %s belongs to %s (%s), not %s (%s): use another -checkpoint or -restart", cpPath, cp.Source, cp.Format, abs, format))
			case cp.Offset > fi.Size():
				return fail(fmt.Errorf("the file is shorter (%d bytes) than its checkpoint (%d bytes): it changed; use -restart", fi.Size(), cp.Offset))
			case cp.Complete && cp.Offset == fi.Size():
				return fail(ErrComplete)
			}
			start = cp
			start.Complete = false
		}
	}
	var src Source
	switch format {
	case FormatCSV:
		var header []string
		if start.Offset > 0 {
			h, _, _, err := ReadCSVHeader(f)
			if err != nil {
				return fail(err)
			}
			if !slices.Equal(h, start.Header) {
				return fail(fmt.Errorf("CSV header %q differs from the checkpoint's %q: the file changed; use -restart", strings.Join(h, ","), strings.Join(start.Header, ",")))
			}
			header = h
			if _, err := f.Seek(start.Offset, io.SeekStart); err != nil {
				return fail(err)
			}
		}
		cs, err := NewCSV(f, header, start.Offset, start.Line, opts)
		if err != nil {
			return fail(err)
		}
		start.Header = cs.(*csvSource).Header()
		src = cs
	case FormatJSONL:
		if _, err := f.Seek(start.Offset, io.SeekStart); err != nil {
			return fail(err)
		}
		src = NewJSONL(f, start.Offset, start.Line)
	default:
		return fail(fmt.Errorf("format %q: want csv or jsonl", format))
	}
	return src, start, f, nil
}

// Options tune Run.
type Options struct {
	// Name prefixes the reports of bad rows ("data.csv:17: ...").
	Name string
	// Checkpoint is the checkpoint file; empty: none (stdin).
	Checkpoint string
	// CheckpointEvery bounds how often the checkpoint is written (default 1s);
	// it is always written at the end.
	CheckpointEvery time.Duration
	// Report receives one line per bad row; nil discards them.
	Report io.Writer
	// ChunkSize is the number of measures per Add (default 1000).
	ChunkSize int
	// Progress, when set, is called with the checkpoint so far (confirmed
	// part) and the offset read, after every chunk.
	Progress func(done Checkpoint, read int64)
}

type pending struct {
	t    *sink.Ticket
	n    int
	end  int64
	line int
}

// Run publishes src's rows through s, starting from the checkpoint start,
// reports bad rows (with their line numbers) to o.Report, writes the
// checkpoint only for rows whose measures are confirmed, and returns the
// final checkpoint. On error the checkpoint stays at the last confirmed row,
// so a new run resumes there (re-publishing a few measures is harmless).
func Run(ctx context.Context, s Sink, src Source, start Checkpoint, o Options) (Checkpoint, error) {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1000
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = time.Second
	}
	report := o.Report
	if report == nil {
		report = io.Discard
	}
	done := start
	lastWrite := time.Now()
	var (
		queue      []pending
		chunk      []measure.Measure
		chunkLines []int
		chunkStart time.Time
		readEnd    = start.Offset
		readLine   = start.Line
	)
	save := func(force bool) error {
		if o.Checkpoint == "" || (!force && time.Since(lastWrite) < o.CheckpointEvery) {
			return nil
		}
		lastWrite = time.Now()
		return WriteCheckpoint(o.Checkpoint, done)
	}
	reap := func(block bool) error {
		for len(queue) > 0 {
			p := queue[0]
			if block {
				if err := p.t.Wait(ctx); err != nil {
					return fmt.Errorf("%s: measures up to line %d not confirmed: %w", o.Name, p.line, err)
				}
			} else {
				select {
				case <-p.t.Done():
					if err := p.t.Err(); err != nil {
						return fmt.Errorf("%s: measures up to line %d not confirmed: %w", o.Name, p.line, err)
					}
				default:
					return nil
				}
			}
			done.Offset, done.Line = p.end, p.line
			done.Published += int64(p.n)
			queue = queue[1:]
		}
		return nil
	}
	flush := func() error {
		if len(chunk) > 0 {
			t, err := s.Add(ctx, chunk...)
			for _, rj := range t.Rejected() {
				fmt.Fprintf(report, "%s:%d: %s\n", o.Name, chunkLines[rj.Index], rj.Reason)
				done.BadRows++
			}
			if err != nil {
				return fmt.Errorf("%s: %w", o.Name, err)
			}
			queue = append(queue, pending{t: t, n: t.Queued(), end: readEnd, line: readLine})
			chunk, chunkLines = chunk[:0], chunkLines[:0]
		} else if len(queue) == 0 {
			done.Offset, done.Line = readEnd, readLine
		}
		if err := reap(false); err != nil {
			return err
		}
		if o.Progress != nil {
			o.Progress(done, readEnd)
		}
		return save(false)
	}
	fail := func(err error) (Checkpoint, error) {
		// Keep what is confirmed.
		_ = reap(false)
		if o.Checkpoint != "" {
			_ = WriteCheckpoint(o.Checkpoint, done)
		}
		return done, err
	}
	for {
		row, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("%s: read: %w", o.Name, err))
		}
		if len(row.Errors) > 0 {
			fmt.Fprintf(report, "%s:%d: %s\n", o.Name, row.Line, strings.Join(row.Errors, "; "))
			s.Reject(ReasonBadRow, len(row.Errors))
			done.BadRows++
		}
		if len(chunk) == 0 {
			chunkStart = time.Now()
		}
		for _, m := range row.Measures {
			chunk = append(chunk, m)
			chunkLines = append(chunkLines, row.Line)
		}
		readEnd = row.End
		readLine = max(readLine, row.Line)
		if len(chunk) >= o.ChunkSize || (len(chunk) > 0 && time.Since(chunkStart) > time.Second) {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := reap(true); err != nil {
		return fail(err)
	}
	done.Offset, done.Line = readEnd, readLine
	done.Complete = true
	if o.Progress != nil {
		o.Progress(done, readEnd)
	}
	if err := save(true); err != nil {
		return done, err
	}
	return done, nil
}
