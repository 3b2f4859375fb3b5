package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FileSuffix is appended to a variable's name to name the variant that
// reads the value from a file.
const FileSuffix = "_FILE"

// Load fills the struct dst points to from the process environment and the
// files named by _FILE variables. See the package documentation for the tags
// and the error format.
func Load(dst any) error {
	return LoadFrom(os.LookupEnv, os.ReadFile, dst)
}

// LoadFrom is Load with the environment and the file system supplied by the
// caller, for tests.
func LoadFrom(lookup func(string) (string, bool), readFile func(string) ([]byte, error), dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", dst)
	}
	root, errs := tree(rv.Elem(), true)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	l := loader{lookup: lookup, readFile: readFile}
	l.load(root)
	return errors.Join(l.errs...)
}

type loader struct {
	lookup   func(string) (string, bool)
	readFile func(string) ([]byte, error)
	errs     []error
}

// load fills n's subtree and reports whether all its fields parsed and
// passed their tag rules. A struct's Validate runs only then, so it sees
// well-formed values; a failing Validate does not stop the ones around it.
func (l *loader) load(n *node) bool {
	ok := true
	for _, c := range n.children {
		if !l.load(c) {
			ok = false
		}
	}
	for _, f := range n.leaves {
		if err := l.field(f); err != nil {
			l.errs = append(l.errs, err)
			ok = false
		}
	}
	if !ok {
		return false
	}
	if err := validate(n.value); err != nil {
		l.errs = append(l.errs, err)
	}
	return true
}

// validate calls the struct's Validate method when it has one.
func validate(v reflect.Value) error {
	if v.CanAddr() && v.Addr().Type().Implements(validatorType) {
		return v.Addr().Interface().(validator).Validate()
	}
	if v.Type().Implements(validatorType) {
		return v.Interface().(validator).Validate()
	}
	return nil
}

// field resolves, parses and checks one variable.
func (l *loader) field(f *leaf) error {
	raw, source, err := l.resolve(f)
	if err != nil {
		return err
	}
	if raw == "" {
		if f.required {
			if source != "" {
				return fmt.Errorf("%s is required; %s=%s is empty", f.env, f.env+FileSuffix, source)
			}
			if f.help != "" {
				return fmt.Errorf("%s is required (%s)", f.env, f.help)
			}
			return fmt.Errorf("%s is required", f.env)
		}
		if f.def == "" {
			f.value.SetZero()
			return nil
		}
		if problem, parsed := set(f, f.def); problem != "" {
			return fmt.Errorf("%s: default %s: %s (fix the default tag of %s)", f.env, display(f, f.def, parsed), problem, f.path)
		}
		return nil
	}
	if problem, parsed := set(f, raw); problem != "" {
		if source != "" {
			return fmt.Errorf("%s=%s (read from %s): %s", f.env, display(f, raw, parsed), f.env+FileSuffix, problem)
		}
		return fmt.Errorf("%s=%s: %s", f.env, display(f, raw, parsed), problem)
	}
	return nil
}

// resolve returns the raw value of f and, when it came from a file, the
// file's path.
func (l *loader) resolve(f *leaf) (raw, source string, err error) {
	direct, _ := l.lookup(f.env)
	path, _ := l.lookup(f.env + FileSuffix)
	switch {
	case direct != "" && path != "":
		return "", "", fmt.Errorf("%s and %s are both set; set only one", f.env, f.env+FileSuffix)
	case path == "":
		return direct, "", nil
	}
	b, err := l.readFile(path)
	if err != nil {
		return "", "", fmt.Errorf("%s=%s: %w", f.env+FileSuffix, path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), path, nil
}

// display renders a value for an error message: masked when secret, bare
// when it parsed as a number, quoted otherwise.
func display(f *leaf, raw string, parsed bool) string {
	if f.secret {
		return "***"
	}
	if parsed && f.kind.numeric() {
		return raw
	}
	return strconv.Quote(maskCredentials(raw))
}

// set parses raw into the field and checks its bounds. It returns the
// problem in words, or "", and whether raw parsed before a bound failed.
func set(f *leaf, raw string) (problem string, parsed bool) {
	v := f.value
	b := f.bounds
	switch f.kind {
	case kindString:
		if f.oneof != nil && !slices.Contains(f.oneof, raw) {
			return "must be one of " + strings.Join(f.oneof, ", "), true
		}
		v.SetString(raw)

	case kindStrings:
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if f.oneof != nil && !slices.Contains(f.oneof, item) {
				return fmt.Sprintf("item %q must be one of %s", maskCredentials(item), strings.Join(f.oneof, ", ")), true
			}
			items = append(items, item)
		}
		if b.hasMin && int64(len(items)) < b.minI {
			return fmt.Sprintf("must list at least %d items", b.minI), true
		}
		if b.hasMax && int64(len(items)) > b.maxI {
			return fmt.Sprintf("must list at most %d items", b.maxI), true
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			s.Index(i).SetString(item)
		}
		v.Set(s)

	case kindBool:
		x, err := strconv.ParseBool(raw)
		if err != nil {
			return "not a boolean (true or false)", false
		}
		v.SetBool(x)

	case kindInt:
		x, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return "out of range for " + v.Type().Kind().String(), false
			}
			return "not an integer", false
		}
		if b.hasMin && x < b.minI {
			return "must be at least " + f.minRaw, true
		}
		if b.hasMax && x > b.maxI {
			return "must be at most " + f.maxRaw, true
		}
		v.SetInt(x)

	case kindUint:
		x, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return "out of range for " + v.Type().Kind().String(), false
			}
			return "not a non-negative integer", false
		}
		if b.hasMin && x < b.minU {
			return "must be at least " + f.minRaw, true
		}
		if b.hasMax && x > b.maxU {
			return "must be at most " + f.maxRaw, true
		}
		v.SetUint(x)

	case kindFloat:
		x, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return "not a number", false
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "not a finite number", false
		}
		if b.hasMin && x < b.minF {
			return "must be at least " + f.minRaw, true
		}
		if b.hasMax && x > b.maxF {
			return "must be at most " + f.maxRaw, true
		}
		v.SetFloat(x)

	case kindDuration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return "not a duration (for example 250ms, 30s, 5m, 1h30m)", false
		}
		if b.hasMin && int64(d) < b.minI {
			return "must be at least " + f.minRaw, true
		}
		if b.hasMax && int64(d) > b.maxI {
			return "must be at most " + f.maxRaw, true
		}
		v.SetInt(int64(d))

	case kindText:
		u := v.Addr().Interface().(encoding.TextUnmarshaler)
		if err := u.UnmarshalText([]byte(raw)); err != nil {
			if f.secret {
				return "not valid", false
			}
			return err.Error(), false
		}
	}
	return "", true
}
