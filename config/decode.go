package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// maxRangeFixes bounds how many out-of-range numbers decodeAll steps over:
// each costs a re-parse of the file, and a real config has a handful of
// numbers at most.
const maxRangeFixes = 64

// decodeAll decodes data into cfg and returns every error it can find in
// one pass, so check-config shows them all at once. BurntSushi/toml stops
// at the first problem, so this works in three steps:
//
//  1. Parse into a generic map. An integer that does not fit in 64 bits is
//     a parse error: it is noted with its key and line, replaced by 0 in a
//     copy of the source and the parse is retried.
//  2. Check each value's type against the Config field it lands in; a
//     mismatch is noted and the key dropped.
//  3. Re-encode what is left and decode it into cfg, which now cannot fail
//     on types; keys Config does not have come back as undecoded.
//
// bad holds the keys already reported, so validate does not report a
// dropped key a second time as "out of range" or "empty". A syntax error
// ends the decoding (fatal): what follows it cannot be read reliably, and
// cfg holds nothing worth validating.
func decodeAll(data []byte, cfg *Config, lines keyIndex) (undecoded []toml.Key, errs []error, bad map[string]bool, fatal bool) {
	bad = map[string]bool{}
	src := string(data)
	var m map[string]any
	for fixes := 0; ; fixes++ {
		m = nil
		_, err := toml.Decode(src, &m)
		if err == nil {
			break
		}
		var pe toml.ParseError
		if !errors.As(err, &pe) {
			return nil, append(errs, err), bad, true
		}
		p := pe.Position
		if !strings.Contains(pe.Message, "is out of range") || fixes == maxRangeFixes ||
			p.Len <= 0 || p.Start < 0 || p.Start+p.Len > len(src) {
			msg := fmt.Errorf("line %d: %s", p.Line, scrubSecrets(data, p.Line, pe.Message))
			return nil, append(errs, msg), bad, true
		}
		key := pe.LastKey
		bad[key] = true
		limit := ""
		if strings.HasSuffix(pe.Message, "int64") {
			limit = " (an integer is at most 9223372036854775807)"
		}
		errs = append(errs, fmt.Errorf("line %d: %s: %s is out of range%s",
			p.Line, printable(key), printable(clip(src[p.Start:p.Start+p.Len], 40)), limit))
		src = src[:p.Start] + "0" + src[p.Start+p.Len:]
	}
	for _, e := range checkTypes(m, reflect.TypeOf(*cfg), nil) {
		if bad[e.key] {
			continue // its out-of-range number is reported already
		}
		if !e.kept {
			bad[e.key] = true
		}
		errs = append(errs, fmt.Errorf("%s%s: %s", lines.prefix(toml.Key(strings.Split(e.key, "."))), printable(e.key), e.msg))
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return nil, append(errs, fmt.Errorf("re-encode config: %w", err)), bad, true
	}
	md, err := toml.NewDecoder(&buf).Decode(cfg)
	if err != nil {
		// Cannot happen after checkTypes; say so rather than lose it, but
		// with the key's line in the file: the decoder's line is one of the
		// re-encoded buffer, which the operator never sees.
		var pe toml.ParseError
		if errors.As(err, &pe) && pe.LastKey != "" {
			err = fmt.Errorf("%s%s: %s", lines.prefix(toml.Key(strings.Split(pe.LastKey, "."))), printable(pe.LastKey), pe.Message)
		}
		return nil, append(errs, fmt.Errorf("decode config: %w", err)), bad, true
	}
	return md.Undecoded(), errs, bad, false
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// typeError is one value of the wrong type. kept says the key still holds
// its good elements (a list with one bad element), so validate checks it.
type typeError struct {
	key, msg string
	kept     bool
}

// checkTypes compares the generic value tree m with the Go type t (a
// struct or a map), removes from m every value of the wrong TOML type and
// returns one error per removal, in key order. Keys t does not have are
// left for the decoder to report as unknown.
func checkTypes(m map[string]any, t reflect.Type, path []string) []typeError {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []typeError
	fields := fieldTypes(t)
	for _, k := range keys {
		ft, ok := fields(k)
		if !ok {
			continue
		}
		key := append(append([]string{}, path...), k)
		if sub, isTable := m[k].(map[string]any); isTable && (ft.Kind() == reflect.Struct || ft.Kind() == reflect.Map) {
			errs = append(errs, checkTypes(sub, ft, key)...)
			continue
		}
		if want, got := kindName(ft), tomlTypeName(m[k]); want != got {
			errs = append(errs, typeError{key: strings.Join(key, "."), msg: fmt.Sprintf("must be %s, got %s", want, got)})
			delete(m, k)
			continue
		}
		if tables, ok := m[k].([]map[string]any); ok { // [[key]]: check it like any list
			list := make([]any, len(tables))
			for i, t := range tables {
				list[i] = t
			}
			m[k] = list
		}
		if list, ok := m[k].([]any); ok && (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array) {
			var elemErrs []typeError
			m[k], elemErrs = checkElems(list, ft.Elem(), strings.Join(key, "."))
			errs = append(errs, elemErrs...)
		}
	}
	return errs
}

// checkElems keeps the elements of list that fit elem and names each one
// that does not (1-based, as an operator counts). The good elements stay,
// so validate still checks them: a bad glob next to a number is reported
// too, not hidden behind it.
func checkElems(list []any, elem reflect.Type, key string) ([]any, []typeError) {
	var errs []typeError
	kept := list[:0:0]
	for i, v := range list {
		if sub, isTable := v.(map[string]any); isTable && (elem.Kind() == reflect.Struct || elem.Kind() == reflect.Map) {
			errs = append(errs, checkTypes(sub, elem, []string{key})...)
			kept = append(kept, sub)
			continue
		}
		if want, got := kindName(elem), tomlTypeName(v); want != got {
			errs = append(errs, typeError{key, fmt.Sprintf("element %d must be %s, got %s", i+1, want, got), true})
			continue
		}
		if inner, ok := v.([]any); ok {
			var innerErrs []typeError
			v, innerErrs = checkElems(inner, elem.Elem(), key)
			errs = append(errs, innerErrs...)
		}
		kept = append(kept, v)
	}
	return kept, errs
}

// fieldTypes returns a lookup of the type a key decodes into: the struct
// field with that toml tag (or, untagged, that name in any case), or the
// element type of a map. Built once per table, not per key.
func fieldTypes(t reflect.Type) func(key string) (reflect.Type, bool) {
	if t.Kind() == reflect.Map {
		return func(string) (reflect.Type, bool) { return t.Elem(), true }
	}
	byTag, byName := map[string]reflect.Type{}, map[string]reflect.Type{}
	var embedded []func(string) (reflect.Type, bool)
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			switch {
			case name == "-" || !f.IsExported():
			case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
				// An embedded struct (HostFiles): its keys sit at this level.
				sub := fieldTypes(f.Type)
				embedded = append(embedded, sub)
			case name != "":
				byTag[name] = f.Type
			default:
				byName[strings.ToLower(f.Name)] = f.Type
			}
		}
	}
	return func(key string) (reflect.Type, bool) {
		if ft, ok := byTag[key]; ok {
			return ft, true
		}
		if ft, ok := byName[strings.ToLower(key)]; ok {
			return ft, true
		}
		for _, sub := range embedded {
			if ft, ok := sub(key); ok {
				return ft, true
			}
		}
		return nil, false
	}
}

// kindName names what a Go field accepts in the words tomlTypeName uses.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a float"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "a table"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.Kind().String()
}

// tomlTypeName names the TOML type of a value toml.Decode put in a map.
func tomlTypeName(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case string:
		return "a string"
	case bool:
		return "true or false"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a date or time"
	}
	return fmt.Sprintf("%T", v)
}
