package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarDecoder is implemented by config types that parse themselves from a
// YAML scalar (durations, secrets).
type scalarDecoder interface {
	decodeScalar(s string) error
}

// decoder walks a YAML node tree into a Go value, strictly: every key must be
// known, every scalar must parse, and each error names the full key path.
type decoder struct {
	getenv func(string) string
	// lenientEnv lets ${NAME} references under sources, connectors and
	// feeds, and those of the inputs' credentials, be unset.
	lenientEnv bool
	errs       []string
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		d.errs = append(d.errs, fmt.Sprintf("line %d: %s: %s", n.Line, path, msg))
		return
	}
	d.errs = append(d.errs, fmt.Sprintf("%s: %s", path, msg))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structField is one YAML key of a struct, with inline structs flattened.
type structField struct {
	key string
	val reflect.Value
}

// fields lists the YAML keys of a struct value in declaration order.
func fields(v reflect.Value) []structField {
	var out []structField
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			out = append(out, fields(v.Field(i))...)
			continue
		}
		if name != "" {
			out = append(out, structField{name, v.Field(i)})
		}
	}
	return out
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		if err := sd.decodeScalar(s); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.fail(n, path, "%q is not a boolean (allowed: true, false)", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		s, ok := d.scalar(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			d.fail(n, path, "%q is not a whole number", s)
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("config: unsupported field kind %s at %s", v.Kind(), path))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		what := path
		if what == "" {
			what = "the configuration"
		}
		d.fail(n, what, "expected a mapping of keys, got %s", nodeKind(n))
		return
	}
	fs := fields(v)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := kn.Value
		full := join(path, key)
		if seen[key] {
			d.fail(kn, full, "key given twice")
			continue
		}
		seen[key] = true
		i := slices.IndexFunc(fs, func(f structField) bool { return f.key == key })
		if i < 0 {
			where := "at the top level"
			if path != "" {
				where = "under " + path
			}
			keys := make([]string, len(fs))
			for j, f := range fs {
				keys[j] = f.key
			}
			d.fail(kn, full, "unknown key (allowed %s: %s)", where, strings.Join(keys, ", "))
			continue
		}
		d.decode(vn, fs[i].val, full)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		// A single scalar is accepted as a one-element list.
		n = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{n}, Line: n.Line}
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", nodeKind(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, en := range n.Content {
		d.decode(en, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
}

// decodeMap decodes a mapping with string keys (e.g. HTTP headers) into a
// map; each value is decoded strictly, like a struct field.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of keys, got %s", nodeKind(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := reflect.ValueOf(kn.Value).Convert(v.Type().Key())
		if kn.Kind != yaml.ScalarNode || kn.Value == "" {
			d.fail(kn, path, "keys must be non-empty strings")
			continue
		}
		if m.MapIndex(key).IsValid() {
			d.fail(kn, join(path, kn.Value), "key given twice")
			continue
		}
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(vn, val, join(path, kn.Value))
		m.SetMapIndex(key, val)
	}
	v.Set(m)
}

// scalar returns a scalar's value with ${ENV} references expanded.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a single value, got %s", nodeKind(n))
		return "", false
	}
	s, err := expandEnv(n.Value, d.getenv)
	if err != nil && d.lenientEnv && (strings.HasPrefix(path, "sources.") || strings.HasPrefix(path, "connectors[") || strings.HasPrefix(path, "feeds.") || inputsCredential(path)) {
		return "", true
	}
	if err != nil {
		d.fail(n, path, "%v", err)
		return "", false
	}
	return s, true
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	default:
		return "something else"
	}
}

// expandEnv replaces ${NAME} and ${NAME:-default} with the environment's
// values. $$ stands for a literal $. A reference to an unset variable with no
// default is an error, so that a secret is never silently empty.
func expandEnv(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte('$')
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in value (write $$ for a literal $)")
		}
		ref := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s} is not a valid environment variable reference (use ${NAME} or ${NAME:-default})", ref)
		}
		val := getenv(name)
		if val == "" {
			if !hasDef {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			val = def
		}
		b.WriteString(val)
		i += 2 + end
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// oneOf checks that each value is in allowed (case-sensitive, as the APIs
// are) and reports the allowed values otherwise.
func oneOf(errs *[]string, path string, values, allowed []string) {
	for i, v := range values {
		if !slices.Contains(allowed, v) {
			*errs = append(*errs, fmt.Sprintf("%s[%d]: %q is not allowed (allowed, case-sensitive: %s)", path, i, v, strings.Join(allowed, ", ")))
		}
	}
}
