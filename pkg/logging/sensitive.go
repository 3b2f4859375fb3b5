package logging

import (
	"fmt"
	"io"

	"go.uber.org/zap"
)

// Redacted replaces every sensitive value in the output.
const Redacted = "[REDACTED]"

// Sensitive is implemented by values that must never be logged in clear.
// Whatever zap field carries such a value (zap.Any, zap.Stringer,
// zap.Object, zap.Array, zap.Reflect, zap.Error, or a struct field, map
// value or slice element reached through zap.Any) is written as Redacted.
//
// Types holding secrets or personal data should implement it, and should
// also make fmt and encoding/json print Redacted (as Secret and Email do),
// so that a value formatted into a message cannot leak either.
type Sensitive interface {
	// Sensitive marks the value; it is never called.
	Sensitive()
}

// Secret is a string that is never printed: passwords, tokens, DSNs, keys.
// fmt (every verb), encoding/json, encoding.TextMarshaler and zap all see
// Redacted. Convert back with string(s) where the value is actually used.
type Secret string

// Sensitive marks Secret as sensitive.
func (Secret) Sensitive() {}

// String returns Redacted.
func (Secret) String() string { return Redacted }

// GoString returns Redacted, quoted, for %#v.
func (Secret) GoString() string { return `"` + Redacted + `"` }

// Format writes Redacted for every fmt verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON returns Redacted as a JSON string.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns Redacted.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Email is an e-mail address, personal data that is never printed. It
// behaves like Secret in fmt, encoding/json and zap.
type Email string

// Sensitive marks Email as sensitive.
func (Email) Sensitive() {}

// String returns Redacted.
func (Email) String() string { return Redacted }

// GoString returns Redacted, quoted, for %#v.
func (Email) GoString() string { return `"` + Redacted + `"` }

// Format writes Redacted for every fmt verb.
func (Email) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON returns Redacted as a JSON string.
func (Email) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns Redacted.
func (Email) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// SecretField returns a field whose value is always written as Redacted,
// keeping the key visible (useful to show that a value was set).
func SecretField(key, value string) zap.Field { return zap.Stringer(key, Secret(value)) }

// EmailField returns a field holding an e-mail address, always written as
// Redacted.
func EmailField(key, value string) zap.Field { return zap.Stringer(key, Email(value)) }

// isSensitive reports whether v marks itself sensitive.
func isSensitive(v any) bool {
	_, ok := v.(Sensitive)
	return ok
}
