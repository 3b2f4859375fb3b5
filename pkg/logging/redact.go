package logging

import (
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewRedactingCore wraps a zapcore.Core so that whatever reaches it, through
// Write or With, is redacted first:
//
//   - a value implementing Sensitive becomes Redacted, whichever field
//     carries it, at any depth;
//   - a field whose key (its dotted path, namespaces and nested objects
//     included) satisfies IsSensitiveKey becomes Redacted, whatever its type;
//   - strings (the message, string fields, fmt.Stringer results, error
//     messages, strings inside objects, arrays and reflected values) pass
//     through Scrub;
//   - errors are written as ECS objects {message, type, stack_trace};
//   - reflected values (zap.Any of maps, structs, slices) are walked like
//     encoding/json would marshal them, with the same rules applied to each
//     key and value;
//   - a zap.Inline value that is Sensitive has no key to show Redacted
//     under: it is left out.
//
// New uses it around the core writing to stdout and Logstash; services can
// use it to wrap other cores, test observers for instance.
func NewRedactingCore(inner zapcore.Core) zapcore.Core {
	return &redactCore{inner: inner}
}

type redactCore struct {
	inner zapcore.Core
	scope scope // namespaces opened by With
}

func (c *redactCore) Enabled(l zapcore.Level) bool { return c.inner.Enabled(l) }

// Level lets zap's LevelOf see through the wrapper.
func (c *redactCore) Level() zapcore.Level { return zapcore.LevelOf(c.inner) }

func (c *redactCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	redacted := clone.scope.fields(fields)
	clone.inner = c.inner.With(redacted)
	return &clone
}

func (c *redactCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *redactCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	ent.Message = Scrub(ent.Message)
	s := c.scope
	return c.inner.Write(ent, s.fields(fields))
}

func (c *redactCore) Sync() error { return c.inner.Sync() }

// scope is where fields are being added: the dotted path of the enclosing
// namespaces, and whether one of them has a sensitive name (then every
// field in it is redacted).
type scope struct {
	prefix string
	all    bool
}

func (s scope) hides(key string) bool { return s.all || sensitivePath(s.prefix, key) }

// fields returns fs redacted. It copies fs only when a field changes, and
// updates s for the namespaces fs opens.
func (s *scope) fields(fs []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i := range fs {
		f, changed := s.field(fs[i])
		if changed && out == nil {
			out = make([]zapcore.Field, len(fs))
			copy(out, fs[:i])
		}
		if out != nil {
			out[i] = f
		}
	}
	if out == nil {
		return fs
	}
	return out
}

func (s *scope) field(f zapcore.Field) (zapcore.Field, bool) {
	switch f.Type {
	case zapcore.SkipType:
		return f, false
	case zapcore.NamespaceType:
		if s.hides(f.Key) {
			s.all = true
		}
		s.prefix = joinKey(s.prefix, f.Key)
		return f, false
	case zapcore.InlineMarshalerType:
		m, _ := f.Interface.(zapcore.ObjectMarshaler)
		if m == nil || isSensitive(m) {
			// An inline value has no key to hold Redacted.
			return zap.Skip(), true
		}
		f.Interface = objectRedactor{m: m, scope: *s}
		return f, true
	}
	if s.hides(f.Key) {
		return zap.String(f.Key, Redacted), true
	}
	switch f.Type {
	case zapcore.StringType:
		if v := Scrub(f.String); v != f.String {
			f.String = v
			return f, true
		}
		return f, false
	case zapcore.ByteStringType:
		b, _ := f.Interface.([]byte)
		return zap.String(f.Key, Scrub(string(b))), true
	case zapcore.StringerType:
		v, _ := f.Interface.(fmt.Stringer)
		if isSensitive(v) {
			return zap.String(f.Key, Redacted), true
		}
		return zap.String(f.Key, Scrub(safeString(v))), true
	case zapcore.ErrorType:
		err, _ := f.Interface.(error)
		return zap.Object(f.Key, newErrorObject(err)), true
	case zapcore.ReflectType:
		return reflectedField(f.Key, cleanReflected(joinKey(s.prefix, f.Key), f.Interface)), true
	case zapcore.ObjectMarshalerType:
		m, _ := f.Interface.(zapcore.ObjectMarshaler)
		if m == nil {
			return zap.String(f.Key, "<nil>"), true
		}
		if isSensitive(m) {
			return zap.String(f.Key, Redacted), true
		}
		return zap.Object(f.Key, objectRedactor{m: m, scope: s.nested(f.Key)}), true
	case zapcore.ArrayMarshalerType:
		m, _ := f.Interface.(zapcore.ArrayMarshaler)
		if m == nil {
			return zap.String(f.Key, "<nil>"), true
		}
		if isSensitive(m) {
			return zap.String(f.Key, Redacted), true
		}
		return zap.Array(f.Key, arrayRedactor{m: m, path: joinKey(s.prefix, f.Key)}), true
	default:
		// Numbers, booleans, times, durations, binary: only their key can
		// make them sensitive.
		return f, false
	}
}

// nested is the scope of an object added under key.
func (s scope) nested(key string) scope {
	return scope{prefix: joinKey(s.prefix, key), all: s.all}
}

// safeString calls String, recovering from the panics of nil receivers as
// zap does.
func safeString(v fmt.Stringer) (s string) {
	if v == nil {
		return "<nil>"
	}
	defer func() {
		if r := recover(); r != nil {
			if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
				s = "<nil>"
				return
			}
			s = fmt.Sprintf("PANIC=%v", r)
		}
	}()
	return v.String()
}

// safeError is safeString for errors.
func safeError(err error) (s string) {
	if err == nil {
		return "<nil>"
	}
	defer func() {
		if r := recover(); r != nil {
			if rv := reflect.ValueOf(err); rv.Kind() == reflect.Pointer && rv.IsNil() {
				s = "<nil>"
				return
			}
			s = fmt.Sprintf("PANIC=%v", r)
		}
	}()
	return err.Error()
}

// errorObject is an error as ECS writes it: error.message, error.type and,
// for errors that format a richer %+v (a stack), error.stack_trace.
type errorObject struct {
	message, typ, stack string
}

func newErrorObject(err error) errorObject {
	if err == nil {
		return errorObject{message: "<nil>"}
	}
	o := errorObject{typ: reflect.TypeOf(err).String()}
	if isSensitive(err) {
		o.message = Redacted
		return o
	}
	o.message = Scrub(safeError(err))
	if f, ok := err.(fmt.Formatter); ok {
		if v := Scrub(fmt.Sprintf("%+v", f)); v != o.message {
			o.stack = v
		}
	}
	return o
}

func (o errorObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("message", o.message)
	if o.typ != "" {
		enc.AddString("type", o.typ)
	}
	if o.stack != "" {
		enc.AddString("stack_trace", o.stack)
	}
	return nil
}

// objectRedactor marshals m through a redacting encoder.
type objectRedactor struct {
	m     zapcore.ObjectMarshaler
	scope scope
}

func (o objectRedactor) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return o.m.MarshalLogObject(&redactEncoder{ObjectEncoder: enc, scope: o.scope})
}

// arrayRedactor marshals m through a redacting array encoder.
type arrayRedactor struct {
	m    zapcore.ArrayMarshaler
	path string
}

func (a arrayRedactor) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	return a.m.MarshalLogArray(&redactArrayEncoder{ArrayEncoder: enc, path: a.path})
}

// redactEncoder is the ObjectEncoder handed to nested marshalers. Every
// method checks the key; strings are scrubbed; nested objects and arrays
// are wrapped in turn.
type redactEncoder struct {
	zapcore.ObjectEncoder
	scope scope
}

func (e *redactEncoder) redacted(key string) bool {
	if e.scope.hides(key) {
		e.ObjectEncoder.AddString(key, Redacted)
		return true
	}
	return false
}

func (e *redactEncoder) AddArray(key string, m zapcore.ArrayMarshaler) error {
	if e.redacted(key) {
		return nil
	}
	if m == nil || isSensitive(m) {
		e.ObjectEncoder.AddString(key, Redacted)
		return nil
	}
	return e.ObjectEncoder.AddArray(key, arrayRedactor{m: m, path: joinKey(e.scope.prefix, key)})
}

func (e *redactEncoder) AddObject(key string, m zapcore.ObjectMarshaler) error {
	if e.redacted(key) {
		return nil
	}
	if m == nil || isSensitive(m) {
		e.ObjectEncoder.AddString(key, Redacted)
		return nil
	}
	return e.ObjectEncoder.AddObject(key, objectRedactor{m: m, scope: e.scope.nested(key)})
}

func (e *redactEncoder) AddBinary(key string, v []byte) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddBinary(key, v)
	}
}

func (e *redactEncoder) AddByteString(key string, v []byte) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddString(key, Scrub(string(v)))
	}
}

func (e *redactEncoder) AddBool(key string, v bool) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddBool(key, v)
	}
}

func (e *redactEncoder) AddComplex128(key string, v complex128) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddComplex128(key, v)
	}
}

func (e *redactEncoder) AddComplex64(key string, v complex64) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddComplex64(key, v)
	}
}

func (e *redactEncoder) AddDuration(key string, v time.Duration) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddDuration(key, v)
	}
}

func (e *redactEncoder) AddFloat64(key string, v float64) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddFloat64(key, v)
	}
}

func (e *redactEncoder) AddFloat32(key string, v float32) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddFloat32(key, v)
	}
}

func (e *redactEncoder) AddInt(key string, v int) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddInt(key, v)
	}
}

func (e *redactEncoder) AddInt64(key string, v int64) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddInt64(key, v)
	}
}

func (e *redactEncoder) AddInt32(key string, v int32) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddInt32(key, v)
	}
}

func (e *redactEncoder) AddInt16(key string, v int16) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddInt16(key, v)
	}
}

func (e *redactEncoder) AddInt8(key string, v int8) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddInt8(key, v)
	}
}

func (e *redactEncoder) AddString(key, v string) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddString(key, Scrub(v))
	}
}

func (e *redactEncoder) AddTime(key string, v time.Time) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddTime(key, v)
	}
}

func (e *redactEncoder) AddUint(key string, v uint) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddUint(key, v)
	}
}

func (e *redactEncoder) AddUint64(key string, v uint64) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddUint64(key, v)
	}
}

func (e *redactEncoder) AddUint32(key string, v uint32) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddUint32(key, v)
	}
}

func (e *redactEncoder) AddUint16(key string, v uint16) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddUint16(key, v)
	}
}

func (e *redactEncoder) AddUint8(key string, v uint8) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddUint8(key, v)
	}
}

func (e *redactEncoder) AddUintptr(key string, v uintptr) {
	if !e.redacted(key) {
		e.ObjectEncoder.AddUintptr(key, v)
	}
}

func (e *redactEncoder) AddReflected(key string, v any) error {
	if e.redacted(key) {
		return nil
	}
	return addValue(e.ObjectEncoder, key, cleanReflected(joinKey(e.scope.prefix, key), v))
}

func (e *redactEncoder) OpenNamespace(key string) {
	if e.scope.hides(key) {
		e.scope.all = true
	}
	e.scope.prefix = joinKey(e.scope.prefix, key)
	e.ObjectEncoder.OpenNamespace(key)
}

// redactArrayEncoder is the ArrayEncoder handed to nested array
// marshalers: strings are scrubbed, sensitive values redacted, nested
// objects and arrays wrapped. Elements share the array's path.
type redactArrayEncoder struct {
	zapcore.ArrayEncoder
	path string
}

func (e *redactArrayEncoder) AppendString(v string) { e.ArrayEncoder.AppendString(Scrub(v)) }

func (e *redactArrayEncoder) AppendByteString(v []byte) {
	e.ArrayEncoder.AppendString(Scrub(string(v)))
}

func (e *redactArrayEncoder) AppendArray(m zapcore.ArrayMarshaler) error {
	if m == nil || isSensitive(m) {
		e.ArrayEncoder.AppendString(Redacted)
		return nil
	}
	return e.ArrayEncoder.AppendArray(arrayRedactor{m: m, path: e.path})
}

func (e *redactArrayEncoder) AppendObject(m zapcore.ObjectMarshaler) error {
	if m == nil || isSensitive(m) {
		e.ArrayEncoder.AppendString(Redacted)
		return nil
	}
	return e.ArrayEncoder.AppendObject(objectRedactor{m: m, scope: scope{prefix: e.path}})
}

func (e *redactArrayEncoder) AppendReflected(v any) error {
	return appendValue(e.ArrayEncoder, cleanReflected(e.path, v))
}
