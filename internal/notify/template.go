package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/vigil-ti/vigil"
)

// TemplateData is what a webhook's body template is executed with.
type TemplateData struct {
	// Doc is the delivered document (the alert), parsed from JSON:
	// objects are map[string]any, numbers json.Number. {{ .Doc.rule.name }}
	// or {{ field .Doc "rule.name" }} reach a nested field.
	Doc any
	// JSON is the document as JSON, as the default body sends it.
	JSON string
	// Key is the document's stable id, also sent as Idempotency-Key.
	Key string
	// Subject is the one-line summary of the document.
	Subject string
	// Connector is the connector's name.
	Connector string
}

// templateFuncs are the functions a body template may call besides
// text/template's own.
var templateFuncs = template.FuncMap{
	"json":  toJSON,
	"field": field,
}

// ParseBodyTemplate parses a webhook body template. Besides text/template's
// functions, a template may call json (a value as JSON: a string becomes a
// quoted, escaped JSON string) and field (a value by its dotted ECS path,
// e.g. field .Doc "threat.indicator.name"; nil when absent).
func ParseBodyTemplate(text string) (*template.Template, error) {
	t, err := template.New("body").Funcs(templateFuncs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("not a valid Go template: %w", err)
	}
	return t, nil
}

// renderBody executes t for the delivery d of connector.
func renderBody(t *template.Template, connector string, d vigil.Delivery) ([]byte, error) {
	data := TemplateData{JSON: string(d.Body), Key: d.Key, Subject: d.Subject, Connector: connector}
	if len(bytes.TrimSpace(d.Body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(d.Body))
		dec.UseNumber()
		if err := dec.Decode(&data.Doc); err != nil {
			return nil, fmt.Errorf("the document is not JSON: %w", err)
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// field returns the value at a dotted path in nested objects. ECS documents
// nest their fields ({"threat":{"indicator":{"name":…}}}) but may also hold
// dotted keys ({"threat.indicator.name":…}): at each level the longest key
// that is a prefix of the rest of the path wins.
func field(v any, path string) any {
	for path != "" {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		rest := path
		found := false
		for {
			if x, ok := m[rest]; ok {
				v, found = x, true
				path = strings.TrimPrefix(strings.TrimPrefix(path, rest), ".")
				break
			}
			i := strings.LastIndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[:i]
		}
		if !found {
			return nil
		}
	}
	return v
}
