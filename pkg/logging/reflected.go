package logging

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// maxDepth bounds the walk of reflected values (and breaks pointer cycles).
const maxDepth = 32

// cleanReflected converts v, the value of a reflected field at path, into a
// tree of cleanObject, cleanArray, string, bool, int64, uint64, float32,
// float64, json.Number and nil, the way encoding/json would marshal it
// (field names from json tags, "-", omitempty, omitzero, embedded structs
// flattened, map keys sorted, []byte as base64), with Sensitive values and
// values under sensitive keys replaced by Redacted and strings scrubbed.
func cleanReflected(path string, v any) any {
	if isSensitive(v) {
		return Redacted
	}
	return cleanValue(path, reflect.ValueOf(v), 0)
}

// cleanKV is one member of a cleanObject.
type cleanKV struct {
	key   string
	value any
}

// cleanObject is a cleaned struct or map, in output order.
type cleanObject []cleanKV

func (o cleanObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, kv := range o {
		if err := addValue(enc, kv.key, kv.value); err != nil {
			return err
		}
	}
	return nil
}

// cleanArray is a cleaned slice or array.
type cleanArray []any

func (a cleanArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, v := range a {
		if err := appendValue(enc, v); err != nil {
			return err
		}
	}
	return nil
}

// reflectedField turns a cleaned value back into a field.
func reflectedField(key string, v any) zap.Field {
	switch t := v.(type) {
	case cleanObject:
		return zap.Object(key, t)
	case cleanArray:
		return zap.Array(key, t)
	case string:
		return zap.String(key, t)
	case bool:
		return zap.Bool(key, t)
	case int64:
		return zap.Int64(key, t)
	case uint64:
		return zap.Uint64(key, t)
	case float32:
		return zap.Float32(key, t)
	case float64:
		return zap.Float64(key, t)
	default: // nil, json.Number
		return zap.Reflect(key, t)
	}
}

func addValue(enc zapcore.ObjectEncoder, key string, v any) error {
	switch t := v.(type) {
	case cleanObject:
		return enc.AddObject(key, t)
	case cleanArray:
		return enc.AddArray(key, t)
	case string:
		enc.AddString(key, t)
	case bool:
		enc.AddBool(key, t)
	case int64:
		enc.AddInt64(key, t)
	case uint64:
		enc.AddUint64(key, t)
	case float32:
		enc.AddFloat32(key, t)
	case float64:
		enc.AddFloat64(key, t)
	default: // nil, json.Number
		return enc.AddReflected(key, t)
	}
	return nil
}

func appendValue(enc zapcore.ArrayEncoder, v any) error {
	switch t := v.(type) {
	case cleanObject:
		return enc.AppendObject(t)
	case cleanArray:
		return enc.AppendArray(t)
	case string:
		enc.AppendString(t)
	case bool:
		enc.AppendBool(t)
	case int64:
		enc.AppendInt64(t)
	case uint64:
		enc.AppendUint64(t)
	case float32:
		enc.AppendFloat32(t)
	case float64:
		enc.AppendFloat64(t)
	default: // nil, json.Number
		return enc.AppendReflected(t)
	}
	return nil
}

func cleanValue(path string, v reflect.Value, depth int) any {
	if !v.IsValid() {
		return nil
	}
	if depth > maxDepth {
		return "[depth limit]"
	}
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return nil
	}
	if r, ok := cleanByMethods(path, v, depth); ok {
		return r
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return cleanValue(path, v.Elem(), depth+1)
	case reflect.String:
		return Scrub(v.String())
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32:
		return float32(v.Float())
	case reflect.Float64:
		return v.Float()
	case reflect.Complex64, reflect.Complex128:
		return strconv.FormatComplex(v.Complex(), 'g', -1, 128)
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		return cleanMap(path, v, depth)
	case reflect.Struct:
		return appendStruct(make(cleanObject, 0, v.NumField()), path, v, depth)
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return base64.StdEncoding.EncodeToString(v.Bytes())
		}
		fallthrough
	case reflect.Array:
		a := make(cleanArray, v.Len())
		for i := range a {
			a[i] = cleanValue(path, v.Index(i), depth+1)
		}
		return a
	default: // chan, func, unsafe pointer: encoding/json refuses them
		return v.Type().String()
	}
}

// sensitiveType is the reflect.Type of Sensitive.
var sensitiveType = reflect.TypeFor[Sensitive]()

// cleanByMethods handles values whose methods decide how they print:
// Sensitive (with a value or pointer receiver, addressable or not),
// json.Marshaler, encoding.TextMarshaler and error.
func cleanByMethods(path string, v reflect.Value, depth int) (any, bool) {
	if t := v.Type(); t.Implements(sensitiveType) || (t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(sensitiveType)) {
		return Redacted, true
	}
	for _, x := range candidates(v) {
		switch t := x.(type) {
		case json.Marshaler:
			b, err := t.MarshalJSON()
			if err != nil {
				return Scrub(fmt.Sprintf("[json: %v]", err)), true
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var tree any
			if err := dec.Decode(&tree); err != nil {
				return Scrub(fmt.Sprintf("[json: %v]", err)), true
			}
			return cleanJSON(path, tree, depth), true
		case encoding.TextMarshaler:
			b, err := t.MarshalText()
			if err != nil {
				return Scrub(fmt.Sprintf("[text: %v]", err)), true
			}
			return Scrub(string(b)), true
		case error:
			return Scrub(safeError(t)), true
		}
	}
	return nil, false
}

// candidates returns v, and &v when addressable, as interfaces (methods
// with pointer receivers count, as in encoding/json). Values of basic kinds
// have no such methods worth the allocation unless they are named types.
func candidates(v reflect.Value) []any {
	if v.Type().NumMethod() == 0 && (v.Kind() == reflect.Interface || !v.CanAddr() || reflect.PointerTo(v.Type()).NumMethod() == 0) {
		return nil
	}
	var out []any
	if v.CanInterface() {
		out = append(out, v.Interface())
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() && v.Addr().CanInterface() {
		out = append(out, v.Addr().Interface())
	}
	return out
}

func cleanMap(path string, v reflect.Value, depth int) cleanObject {
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		entries = append(entries, entry{key: mapKey(it.Key()), val: it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	obj := make(cleanObject, len(entries))
	for i, e := range entries {
		obj[i].key = e.key
		if sensitivePath(path, e.key) {
			obj[i].value = Redacted
		} else {
			obj[i].value = cleanValue(joinKey(path, e.key), e.val, depth+1)
		}
	}
	return obj
}

// mapKey renders a map key as encoding/json does; keys are scrubbed like
// any other string (an e-mail address used as a key is still personal).
func mapKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return Scrub(k.String())
	}
	if k.CanInterface() {
		if isSensitive(k.Interface()) {
			return Redacted
		}
		if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
			if b, err := tm.MarshalText(); err == nil {
				return Scrub(string(b))
			}
		}
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10)
	}
	if k.CanInterface() {
		return Scrub(fmt.Sprint(k.Interface()))
	}
	return k.Type().String()
}

// appendStruct appends the fields of struct v to obj, following
// encoding/json's naming rules.
func appendStruct(obj cleanObject, path string, v reflect.Value, depth int) cleanObject {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fv := v.Field(i)
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if fv.Kind() == reflect.Pointer {
					if fv.IsNil() {
						continue
					}
					fv = fv.Elem()
				}
				if depth < maxDepth {
					obj = appendStruct(obj, path, fv, depth+1)
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if hasOption(opts, "omitempty") && isEmptyValue(fv) {
			continue
		}
		if hasOption(opts, "omitzero") && fv.IsZero() {
			continue
		}
		kv := cleanKV{key: name}
		if sensitivePath(path, name) {
			kv.value = Redacted
		} else {
			kv.value = cleanValue(joinKey(path, name), fv, depth+1)
		}
		obj = append(obj, kv)
	}
	return obj
}

func hasOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}

// isEmptyValue is encoding/json's definition, for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// cleanJSON cleans the decoded output of a json.Marshaler.
func cleanJSON(path string, x any, depth int) any {
	if depth > maxDepth {
		return "[depth limit]"
	}
	switch t := x.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		obj := make(cleanObject, len(keys))
		for i, k := range keys {
			obj[i].key = Scrub(k)
			if sensitivePath(path, k) {
				obj[i].value = Redacted
			} else {
				obj[i].value = cleanJSON(joinKey(path, k), t[k], depth+1)
			}
		}
		return obj
	case []any:
		a := make(cleanArray, len(t))
		for i, e := range t {
			a[i] = cleanJSON(path, e, depth+1)
		}
		return a
	case string:
		return Scrub(t)
	default: // json.Number, bool, nil
		return t
	}
}
