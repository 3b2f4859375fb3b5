package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	validatorType       = reflect.TypeFor[validator]()
)

// validator is the optional cross-field check a config struct may offer.
type validator interface {
	Validate() error
}

// kind is the parsing rule of a leaf field.
type kind int

const (
	kindString kind = iota
	kindBool
	kindInt
	kindUint
	kindFloat
	kindDuration
	kindStrings
	kindText
)

// numeric reports whether a parsed value of k prints without quotes.
func (k kind) numeric() bool {
	switch k {
	case kindBool, kindInt, kindUint, kindFloat, kindDuration:
		return true
	}
	return false
}

// leaf is one tagged field.
type leaf struct {
	env      string
	def      string
	help     string
	secret   bool
	required bool
	oneof    []string
	minRaw   string
	maxRaw   string
	bounds   bounds
	kind     kind
	path     string        // Go field path, for programming errors
	value    reflect.Value // the field itself
}

// bounds holds parsed min/max tags; which member is used depends on the kind.
type bounds struct {
	hasMin, hasMax bool
	minI, maxI     int64
	minU, maxU     uint64
	minF, maxF     float64
}

// node is one struct of the tree: its own tagged fields, then its nested
// structs.
type node struct {
	value    reflect.Value
	leaves   []*leaf
	children []*node
}

// tree walks the struct v, allocating nil nested struct pointers when alloc
// is set. It returns the programming errors it finds next to the tree, so
// the read-only renderers can still show what they understand.
func tree(v reflect.Value, alloc bool) (*node, []error) {
	w := walker{alloc: alloc, seen: map[string]string{}, onPath: map[reflect.Type]bool{}}
	n := w.walk(v, v.Type().Name())
	return n, w.errs
}

type walker struct {
	alloc  bool
	seen   map[string]string     // env name -> Go path
	onPath map[reflect.Type]bool // struct types being walked, to refuse cycles
	errs   []error
}

func (w *walker) walk(v reflect.Value, path string) *node {
	n := &node{value: v}
	t := v.Type()
	w.onPath[t] = true
	defer delete(w.onPath, t)
	for i := range t.NumField() {
		sf := t.Field(i)
		fv := v.Field(i)
		fpath := path + "." + sf.Name
		env, tagged := sf.Tag.Lookup("env")
		if tagged {
			if !sf.IsExported() {
				w.errs = append(w.errs, fmt.Errorf("config: %s (%s): env tag on an unexported field", fpath, env))
				continue
			}
			if l := w.leaf(sf, fv, env, fpath); l != nil {
				n.leaves = append(n.leaves, l)
			}
			continue
		}
		// Walk nested structs that declare variables: exported fields, and
		// embedded structs of unexported types (their exported fields are
		// promoted and settable).
		st := sf.Type
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() != reflect.Struct ||
			!(sf.IsExported() || sf.Anonymous && sf.Type.Kind() == reflect.Struct) ||
			!declares(st, map[reflect.Type]bool{}) {
			continue
		}
		if w.onPath[st] {
			w.errs = append(w.errs, fmt.Errorf("config: %s: %s contains itself", fpath, st))
			continue
		}
		n.children = append(n.children, w.walk(w.structOf(fv), fpath))
	}
	return n
}

// declares reports whether the struct type t, or a struct nested in it,
// has env tags.
func declares(t reflect.Type, visited map[reflect.Type]bool) bool {
	if visited[t] {
		return false
	}
	visited[t] = true
	for i := range t.NumField() {
		sf := t.Field(i)
		if _, ok := sf.Tag.Lookup("env"); ok {
			return true
		}
		st := sf.Type
		if st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() == reflect.Struct && declares(st, visited) {
			return true
		}
	}
	return false
}

// structOf returns the struct a field holds by value or by pointer; a nil
// pointer is allocated when loading and read as a zero struct otherwise.
func (w *walker) structOf(fv reflect.Value) reflect.Value {
	if fv.Kind() != reflect.Pointer {
		return fv
	}
	if fv.IsNil() {
		if w.alloc && fv.CanSet() {
			fv.Set(reflect.New(fv.Type().Elem()))
			return fv.Elem()
		}
		return reflect.New(fv.Type().Elem()).Elem()
	}
	return fv.Elem()
}

func (w *walker) leaf(sf reflect.StructField, fv reflect.Value, env, path string) *leaf {
	fail := func(format string, args ...any) *leaf {
		w.errs = append(w.errs, fmt.Errorf("config: %s (%s): %s", path, env, fmt.Sprintf(format, args...)))
		return nil
	}
	if env == "" || strings.ContainsAny(env, "= \t\n") {
		return fail("env tag must be a variable name")
	}
	if prev, dup := w.seen[env]; dup {
		return fail("variable already declared by %s", prev)
	}
	w.seen[env] = path

	l := &leaf{
		env:    env,
		def:    sf.Tag.Get("default"),
		help:   sf.Tag.Get("help"),
		minRaw: sf.Tag.Get("min"),
		maxRaw: sf.Tag.Get("max"),
		path:   path,
		value:  fv,
	}
	var err error
	if l.secret, err = boolTag(sf, "secret"); err != nil {
		return fail("%v", err)
	}
	if l.required, err = boolTag(sf, "required"); err != nil {
		return fail("%v", err)
	}
	if l.required && l.def != "" {
		return fail("a required variable cannot have a default")
	}
	if o, ok := sf.Tag.Lookup("oneof"); ok {
		l.oneof = strings.Fields(o)
		if len(l.oneof) == 0 {
			return fail("oneof tag lists no values")
		}
	}

	k, ok := kindOf(sf.Type)
	if !ok {
		return fail("unsupported type %s", sf.Type)
	}
	l.kind = k
	if l.oneof != nil && k != kindString && k != kindStrings {
		return fail("oneof applies to string and []string fields only")
	}
	if err := l.parseBounds(); err != nil {
		return fail("%v", err)
	}
	return l
}

func boolTag(sf reflect.StructField, name string) (bool, error) {
	s, ok := sf.Tag.Lookup(name)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s tag %q is not a boolean", name, s)
	}
	return b, nil
}

func kindOf(t reflect.Type) (kind, bool) {
	if t == durationType {
		return kindDuration, true
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return kindText, true
	}
	switch t.Kind() {
	case reflect.String:
		return kindString, true
	case reflect.Bool:
		return kindBool, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindInt, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kindUint, true
	case reflect.Float32, reflect.Float64:
		return kindFloat, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return kindStrings, true
		}
	}
	return 0, false
}

// parseBounds parses the min and max tags for the leaf's kind.
func (l *leaf) parseBounds() error {
	if l.minRaw == "" && l.maxRaw == "" {
		return nil
	}
	b := &l.bounds
	parse := func(raw string, i *int64, u *uint64, f *float64) error {
		var err error
		switch l.kind {
		case kindInt:
			*i, err = strconv.ParseInt(raw, 10, 64)
		case kindStrings:
			*i, err = strconv.ParseInt(raw, 10, 64)
			if err == nil && *i < 0 {
				err = errors.New("negative count")
			}
		case kindDuration:
			var d time.Duration
			d, err = time.ParseDuration(raw)
			*i = int64(d)
		case kindUint:
			*u, err = strconv.ParseUint(raw, 10, 64)
		case kindFloat:
			*f, err = strconv.ParseFloat(raw, 64)
		default:
			return errors.New("min and max apply to numbers, durations and []string only")
		}
		if err != nil {
			return fmt.Errorf("bound %q does not parse: %w", raw, err)
		}
		return nil
	}
	if l.minRaw != "" {
		b.hasMin = true
		if err := parse(l.minRaw, &b.minI, &b.minU, &b.minF); err != nil {
			return err
		}
	}
	if l.maxRaw != "" {
		b.hasMax = true
		if err := parse(l.maxRaw, &b.maxI, &b.maxU, &b.maxF); err != nil {
			return err
		}
	}
	return nil
}

// leaves lists the tagged fields of the tree in declaration order.
func (n *node) all() []*leaf {
	var out []*leaf
	var visit func(*node)
	visit = func(n *node) {
		out = append(out, n.leaves...)
		for _, c := range n.children {
			visit(c)
		}
	}
	visit(n)
	return out
}

// rootValue returns the struct behind v, copying a non-pointer struct into
// an addressable value so pointer-receiver methods are reachable.
func rootValue(v any) (reflect.Value, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return reflect.Value{}, false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	if !rv.CanAddr() {
		cp := reflect.New(rv.Type()).Elem()
		cp.Set(rv)
		rv = cp
	}
	return rv, true
}
