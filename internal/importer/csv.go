package importer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// ValueColumns are the header names of the value column, unless --column
// names another.
var ValueColumns = []string{"value", "indicator", "ioc"}

// csvReader reads CSV lists: a header row, then one record a line.
type csvReader struct {
	column string // the value column's name, "" for ValueColumns
	delim  byte
	header []string
	// Column indexes, -1 when absent.
	value, typ, provider, confidence, tags, firstSeen, lastSeen, description int
	fields                                                                   []string
	scratch                                                                  []byte
	tagList                                                                  []string
	// lastComment is the last comment line before the header, which is
	// the header itself in lists that comment it out ("# id,url,...").
	lastComment string
}

// normColumn is the form header names are matched in: trimmed, lower
// case, with spaces and hyphens as underscores.
func normColumn(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "_", "-", "_").Replace(s)
}

// delimiter guesses the delimiter of a header line: ',' unless the line
// has none and has tabs or semicolons.
func delimiter(line string) byte {
	switch {
	case strings.IndexByte(line, ',') >= 0:
		return ','
	case strings.IndexByte(line, '\t') >= 0:
		return '\t'
	case strings.IndexByte(line, ';') >= 0:
		return ';'
	}
	return ','
}

// setHeader reads a header line. It returns an error naming the columns
// when none is the value column.
func (c *csvReader) setHeader(line string) error {
	c.delim = delimiter(line)
	fields, err := c.split(line)
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	c.header = append(c.header[:0], fields...)
	for i := range c.header {
		c.header[i] = strings.Clone(c.header[i])
	}
	c.value = -1
	optional := map[string]*int{
		"type": &c.typ, "provider": &c.provider, "confidence": &c.confidence, "tags": &c.tags,
		"first_seen": &c.firstSeen, "last_seen": &c.lastSeen, "description": &c.description,
	}
	for _, col := range optional {
		*col = -1
	}
	want := normColumn(c.column)
	for i, h := range c.header {
		name := normColumn(h)
		if want != "" && name == want || want == "" && c.value < 0 && slices.Contains(ValueColumns, name) {
			c.value = i
		} else if col, ok := optional[name]; ok && *col < 0 {
			*col = i
		}
	}
	if c.value < 0 {
		names := strings.Join(c.header, ", ")
		if c.column != "" {
			return fmt.Errorf("header has no column %q (columns: %s)", c.column, names)
		}
		return fmt.Errorf("header has no value column: name one value, indicator or ioc, or give --column (columns: %s)", names)
	}
	return nil
}

// isHeader reports whether line could be the header: it has a value
// column.
func (c *csvReader) isHeader(line string) bool {
	probe := csvReader{column: c.column}
	return probe.setHeader(line) == nil
}

// record reads a data line into rec.
func (c *csvReader) record(line string, rec *record) error {
	fields, err := c.split(line)
	if err != nil {
		return err
	}
	if len(fields) > len(c.header) {
		return fmt.Errorf("has %d fields, the header has %d (quote fields that hold a %q)", len(fields), len(c.header), string(c.delim))
	}
	get := func(i int) string {
		if i < 0 || i >= len(fields) {
			return ""
		}
		return strings.TrimSpace(fields[i])
	}
	*rec = record{
		value:       get(c.value),
		provider:    get(c.provider),
		confidence:  get(c.confidence),
		description: get(c.description),
	}
	if rec.value == "" {
		return fmt.Errorf("column %q is empty", c.header[c.value])
	}
	if t := get(c.typ); t != "" {
		if rec.typ, err = ParseType(t, true); err != nil {
			return fmt.Errorf("column %q: %w", c.header[c.typ], err)
		}
	}
	if s := get(c.tags); s != "" {
		c.tagList = c.tagList[:0]
		for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '|' }) {
			if t = strings.TrimSpace(t); t != "" {
				c.tagList = append(c.tagList, t)
			}
		}
		rec.tags = c.tagList
	}
	if rec.firstSeen, err = parseDate(c.header, c.firstSeen, get(c.firstSeen)); err != nil {
		return err
	}
	if rec.lastSeen, err = parseDate(c.header, c.lastSeen, get(c.lastSeen)); err != nil {
		return err
	}
	return nil
}

// parseDate parses an ISO 8601 date, also with a space for the 'T'
// ("2024-05-01 12:00:00", as many CSV feeds write it).
func parseDate(header []string, col int, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, ok := ecs.ParseTime(s)
	if !ok && len(s) > 10 && s[10] == ' ' {
		t, ok = ecs.ParseTime(s[:10] + "T" + strings.Replace(s[11:], " ", "", 1))
	}
	if !ok {
		return time.Time{}, fmt.Errorf("column %q: %q is not an ISO 8601 date (e.g. 2024-05-01T12:00:00Z)", header[col], s)
	}
	return t, nil
}

// split splits one CSV line into fields. A field in double quotes may hold
// the delimiter and doubled quotes; it cannot span lines. A quote inside
// an unquoted field is taken literally. The fields view line and c's
// scratch.
func (c *csvReader) split(line string) ([]string, error) {
	c.fields = c.fields[:0]
	c.scratch = c.scratch[:0]
	for i := 0; ; {
		j := i
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j < len(line) && line[j] == '"' {
			i = j
			start := len(c.scratch)
			j := i + 1
			for {
				k := strings.IndexByte(line[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("field %d: quoted field is not closed on this line", len(c.fields)+1)
				}
				c.scratch = append(c.scratch, line[j:j+k]...)
				j += k + 1
				if j < len(line) && line[j] == '"' {
					c.scratch = append(c.scratch, '"')
					j++
					continue
				}
				break
			}
			// Trailing white space after the closing quote is allowed.
			for j < len(line) && (line[j] == ' ' || line[j] == '\t') && line[j] != c.delim {
				j++
			}
			if j < len(line) && line[j] != c.delim {
				return nil, fmt.Errorf("field %d: text after the closing quote", len(c.fields)+1)
			}
			c.fields = append(c.fields, b2s(c.scratch[start:]))
			if j >= len(line) {
				return c.fields, nil
			}
			i = j + 1
			continue
		}
		end := strings.IndexByte(line[i:], c.delim)
		if end < 0 {
			c.fields = append(c.fields, line[i:])
			return c.fields, nil
		}
		c.fields = append(c.fields, line[i:i+end])
		i += end + 1
	}
}
