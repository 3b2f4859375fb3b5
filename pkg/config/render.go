package config

import (
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Mask is what a set secret shows instead of its value.
const Mask = "***"

// Field describes one configuration variable for documentation and the
// start-up log.
type Field struct {
	// Env is the variable's name; Env+"_FILE" is accepted too.
	Env string
	// Value is the current value as text, with secrets and credentials
	// masked: a secret shows "***" when set and "" when not.
	Value string
	// Default is the default tag, masked like Value.
	Default string
	// Help says what the variable is for.
	Help string
	// Secret is set for variables whose value is never shown.
	Secret bool
	// Required is set for variables that have to be given.
	Required bool
}

// Fields lists the variables of the struct v (or pointer to struct) in
// declaration order, nested structs included. It is best-effort: fields
// Load would refuse are left out, and v = nil yields nil.
func Fields(v any) []Field {
	root, ok := rootTree(v)
	if !ok {
		return nil
	}
	leaves := root.all()
	out := make([]Field, 0, len(leaves))
	for _, l := range leaves {
		def := l.def
		if l.secret && def != "" {
			def = Mask
		} else {
			def = maskCredentials(def)
		}
		out = append(out, Field{
			Env:      l.env,
			Value:    shown(l),
			Default:  def,
			Help:     l.help,
			Secret:   l.secret,
			Required: l.required,
		})
	}
	return out
}

// Describe maps each variable of v to its masked current value, ready for a
// structured log field such as zap.Any("config", config.Describe(cfg)).
func Describe(v any) map[string]string {
	fields := Fields(v)
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		out[f.Env] = f.Value
	}
	return out
}

// Environ renders v as NAME=value pairs, in declaration order, that Load
// reads back into an equal value: the environment of a child process
// configured by v (tests, benchmarks). Unlike Print and Describe it does NOT
// mask secrets or credentials; never log its result. Values that are zero
// are left out unless the field has a non-zero default, so the child sees
// what v holds.
func Environ(v any) []string {
	root, ok := rootTree(v)
	if !ok {
		return nil
	}
	var out []string
	for _, l := range root.all() {
		val := raw(l)
		if l.value.IsZero() && l.def == "" {
			continue
		}
		out = append(out, l.env+"="+val)
	}
	return out
}

// raw is the field's current value as the text Load accepts, unmasked.
func raw(l *leaf) string {
	if l.kind == kindStrings {
		items := make([]string, l.value.Len())
		for i := range items {
			items[i] = l.value.Index(i).String()
		}
		return strings.Join(items, ",")
	}
	return format(l.value, l.kind)
}

// Print writes one NAME=value line per variable of v, in declaration order,
// with secrets and credentials masked. Values that are empty or need it are
// quoted. It returns the first write error.
func Print(w io.Writer, v any) error {
	var b strings.Builder
	for _, f := range Fields(v) {
		b.WriteString(f.Env)
		b.WriteByte('=')
		if q := strconv.Quote(f.Value); q != `"`+f.Value+`"` || strings.ContainsAny(f.Value, " #") {
			b.WriteString(q)
		} else {
			b.WriteString(f.Value)
		}
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return nil
}

// Markdown renders the variables of v as a Markdown table with the columns
// Variable, Default, Description and Secret, for the configuration reference
// in the README. The description is the help tag followed by the rules the
// variable must satisfy.
func Markdown(v any) string {
	root, ok := rootTree(v)
	if !ok {
		return ""
	}
	var b strings.Builder
	b.WriteString("| Variable | Default | Description | Secret |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, l := range root.all() {
		def := ""
		switch {
		case l.secret && l.def != "":
			def = "`" + Mask + "`"
		case l.def != "":
			def = "`" + cell(maskCredentials(l.def)) + "`"
		}
		secret := ""
		if l.secret {
			secret = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", l.env, def, cell(describeRules(l)), secret)
	}
	return b.String()
}

// describeRules is the help text followed by the field's rules in words.
func describeRules(l *leaf) string {
	parts := []string{}
	if h := strings.TrimSpace(l.help); h != "" {
		if !strings.HasSuffix(h, ".") {
			h += "."
		}
		parts = append(parts, strings.ToUpper(h[:1])+h[1:])
	}
	if l.required {
		parts = append(parts, "Required.")
	}
	if l.oneof != nil {
		quoted := make([]string, len(l.oneof))
		for i, o := range l.oneof {
			quoted[i] = "`" + o + "`"
		}
		parts = append(parts, "One of "+strings.Join(quoted, ", ")+".")
	}
	unit := ""
	if l.kind == kindStrings {
		unit = " items"
	}
	switch {
	case l.bounds.hasMin && l.bounds.hasMax:
		parts = append(parts, fmt.Sprintf("From %s to %s%s.", l.minRaw, l.maxRaw, unit))
	case l.bounds.hasMin:
		parts = append(parts, fmt.Sprintf("At least %s%s.", l.minRaw, unit))
	case l.bounds.hasMax:
		parts = append(parts, fmt.Sprintf("At most %s%s.", l.maxRaw, unit))
	}
	if l.kind == kindStrings {
		parts = append(parts, "Comma separated.")
	}
	return strings.Join(parts, " ")
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func rootTree(v any) (*node, bool) {
	rv, ok := rootValue(v)
	if !ok {
		return nil, false
	}
	root, _ := tree(rv, false)
	return root, true
}

// shown is the field's current value as it may be shown.
func shown(l *leaf) string {
	v := l.value
	if l.secret {
		if v.IsZero() {
			return ""
		}
		return Mask
	}
	if l.kind == kindStrings {
		items := make([]string, v.Len())
		for i := range items {
			items[i] = maskCredentials(v.Index(i).String())
		}
		return strings.Join(items, ",")
	}
	return maskCredentials(format(v, l.kind))
}

// format renders a field's value as the text Load would accept.
func format(v reflect.Value, k kind) string {
	switch k {
	case kindString:
		return v.String()
	case kindBool:
		return strconv.FormatBool(v.Bool())
	case kindInt:
		return strconv.FormatInt(v.Int(), 10)
	case kindUint:
		return strconv.FormatUint(v.Uint(), 10)
	case kindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	case kindDuration:
		return time.Duration(v.Int()).String()
	case kindText:
		if v.CanAddr() && v.Addr().Type().Implements(textMarshalerType) {
			if b, err := v.Addr().Interface().(encoding.TextMarshaler).MarshalText(); err == nil {
				return string(b)
			}
		} else if v.Type().Implements(textMarshalerType) {
			if b, err := v.Interface().(encoding.TextMarshaler).MarshalText(); err == nil {
				return string(b)
			}
		}
	}
	return fmt.Sprint(v.Interface())
}
