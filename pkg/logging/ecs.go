package logging

import (
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ECSVersion is the Elastic Common Schema version the lines follow,
// written as ecs.version on every line.
const ECSVersion = "8.11.0"

// Event outcomes defined by ECS (event.outcome).
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeUnknown = "unknown"
)

// CategoryAudit is the event.category of audit events: every admin change
// and every data read served by the API.
const CategoryAudit = "audit"

// EncoderConfig returns the zap JSON encoder configuration producing ECS
// field names: @timestamp (RFC 3339 with nanoseconds, UTC), log.level
// (lowercase), log.logger, log.origin {file.name, file.line, function},
// message and error.stack_trace. Durations are written in nanoseconds, the
// unit of ECS event.duration.
func EncoderConfig() zapcore.EncoderConfig {
	return zapcore.EncoderConfig{
		TimeKey:        "@timestamp",
		LevelKey:       "log.level",
		NameKey:        "log.logger",
		CallerKey:      "log.origin",
		MessageKey:     "message",
		StacktraceKey:  "error.stack_trace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     encodeTime,
		EncodeDuration: zapcore.NanosDurationEncoder,
		EncodeCaller:   encodeCaller,
		EncodeName:     zapcore.FullNameEncoder,
	}
}

func encodeTime(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	zapcore.RFC3339NanoTimeEncoder(t.UTC(), enc)
}

// encodeCaller writes log.origin as an object, as ECS nests it. Encoders
// that cannot nest objects get "dir/file.go:line".
func encodeCaller(c zapcore.EntryCaller, enc zapcore.PrimitiveArrayEncoder) {
	if !c.Defined {
		enc.AppendString("undefined")
		return
	}
	if ae, ok := enc.(zapcore.ArrayEncoder); ok {
		_ = ae.AppendObject(origin(c))
		return
	}
	enc.AppendString(c.TrimmedPath())
}

// origin marshals an EntryCaller as ECS log.origin.
type origin zapcore.EntryCaller

func (o origin) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("file.name", trimFile(o.File))
	enc.AddInt("file.line", o.Line)
	if o.Function != "" {
		enc.AddString("function", o.Function)
	}
	return nil
}

// trimFile keeps the last directory and the file name, like
// EntryCaller.TrimmedPath, so build paths do not leak.
func trimFile(file string) string {
	i := strings.LastIndexByte(file, '/')
	if i < 0 {
		return file
	}
	j := strings.LastIndexByte(file[:i], '/')
	if j < 0 {
		return file
	}
	return file[j+1:]
}

// Event returns ECS event.category, event.action and event.outcome, written
// inline (three dotted keys). Empty arguments are left out. Use the Outcome
// constants for outcome.
func Event(category, action, outcome string) zap.Field {
	return zap.Inline(event{category: category, action: action, outcome: outcome})
}

// Audit returns an audit event: Event(CategoryAudit, action, outcome) with
// event.kind "event". Add the actor with UserID and the object of the action
// with other fields; never the actor's name or e-mail.
func Audit(action, outcome string) zap.Field {
	return zap.Inline(event{kind: "event", category: CategoryAudit, action: action, outcome: outcome})
}

type event struct{ kind, category, action, outcome string }

func (e event) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, kv := range [...][2]string{
		{"event.kind", e.kind},
		{"event.category", e.category},
		{"event.action", e.action},
		{"event.outcome", e.outcome},
	} {
		if kv[1] != "" {
			enc.AddString(kv[0], kv[1])
		}
	}
	return nil
}

// UserID returns ECS user.id: the pseudonymous identifier of a user, the
// only user field that is logged in clear.
func UserID(id string) zap.Field { return zap.String("user.id", id) }

// TraceID returns ECS trace.id, to correlate the lines of one request.
func TraceID(id string) zap.Field { return zap.String("trace.id", id) }
