package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// Bulk operations, as the action lines name them.
const (
	opIndex uint8 = iota
	opCreate
	opUpdate
	opDelete
)

var opNames = [...]string{opIndex: "index", opCreate: "create", opUpdate: "update", opDelete: "delete"}

// DefaultIndex is the _index answered for a document whose action and
// path name none (Elasticsearch would refuse it; vigil matches it).
const DefaultIndex = "events"

// bulkItem is one operation of a bulk request and its answer.
type bulkItem struct {
	src     []byte // the document to match; nil: nothing to match
	index   string
	id      string
	errType string
	reason  string
	line    int32 // the action's line
	srcLine int32 // the document's line
	op      uint8
	// status is the item's HTTP status: set by the parser for items
	// decided before matching, by Run for the others.
	status uint16
	result string // "created", "noop", "not_found"
}

func (it *bulkItem) fail(status uint16, errType, reason string) {
	it.status, it.errType, it.reason = status, errType, reason
}

// bulkParser splits a bulk body into items.
type bulkParser struct {
	body      []byte
	line      int32
	index     string // the path's {index}
	p         fastjson.Parser
	lastIndex string // interned _index
}

// next returns the next line that is not blank, and its number.
func (bp *bulkParser) next() ([]byte, int32, bool) {
	for len(bp.body) > 0 {
		line := bp.body
		if i := bytes.IndexByte(bp.body, '\n'); i >= 0 {
			line, bp.body = bp.body[:i], bp.body[i+1:]
		} else {
			bp.body = nil
		}
		bp.line++
		if len(bytes.TrimSpace(line)) > 0 {
			return line, bp.line, true
		}
	}
	return nil, bp.line, false
}

// peek returns the next line that is not blank without consuming it.
func (bp *bulkParser) peek() ([]byte, bool) {
	save, saveLine := bp.body, bp.line
	line, _, ok := bp.next()
	bp.body, bp.line = save, saveLine
	return line, ok
}

// action parses an action and metadata line.
func (bp *bulkParser) action(line []byte, it *bulkItem) error {
	v, err := bp.p.ParseBytes(line)
	if err != nil {
		return fmt.Errorf("not valid JSON: %v", err)
	}
	o, err := v.Object()
	if err != nil {
		return fmt.Errorf("expected an object such as {\"index\":{}} but found %s", v.Type())
	}
	if o.Len() != 1 {
		return fmt.Errorf("expected one action (create, delete, index, update) but found %d keys", o.Len())
	}
	var name string
	var meta *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) { name, meta = string(k), v })
	op := -1
	for i, n := range opNames {
		if n == name {
			op = i
		}
	}
	if op < 0 {
		return fmt.Errorf("expected one of [create, delete, index, update] but found [%s]", name)
	}
	if meta.Type() != fastjson.TypeObject {
		return fmt.Errorf("the value of [%s] must be an object", name)
	}
	it.op = uint8(op)
	it.index = bp.index
	if x := meta.Get("_index"); x != nil {
		b, err := x.StringBytes()
		if err != nil {
			return fmt.Errorf("[_index] must be a string")
		}
		if string(b) != bp.lastIndex {
			bp.lastIndex = string(b)
		}
		it.index = bp.lastIndex
	}
	if x := meta.Get("_id"); x != nil {
		switch x.Type() {
		case fastjson.TypeString:
			it.id = string(x.GetStringBytes())
		case fastjson.TypeNumber:
			it.id = x.String()
		default:
			return fmt.Errorf("[_id] must be a string")
		}
	}
	if it.index == "" {
		it.index = DefaultIndex
	}
	return nil
}

// parseBulk splits a bulk body into its items: an action line, then a
// document line for index, create and update. A malformed action line
// fails its item, and the line after it is taken as its document unless
// it is an action itself, so one bad line never shifts the items that
// follow. extra returns the bytes the items add to the job's charge.
func (p *Pipeline) parseBulk(body []byte, index string) (items []bulkItem, extra int64) {
	bp := &bulkParser{body: bytes.TrimPrefix(body, bom), index: index}
	for {
		line, n, ok := bp.next()
		if !ok {
			return items, extra
		}
		items = append(items, bulkItem{line: n})
		it := &items[len(items)-1]
		extra += itemCharge
		if err := bp.action(line, it); err != nil {
			it.op, it.index, it.id = opIndex, index, ""
			if it.index == "" {
				it.index = DefaultIndex
			}
			it.fail(http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("Malformed action/metadata line [%d], %v", n, err))
			if next, ok := bp.peek(); ok && bp.action(next, &bulkItem{}) != nil {
				bp.next() // this action's document
			}
			continue
		}
		if it.op == opDelete {
			if it.id == "" {
				it.fail(http.StatusBadRequest, "action_request_validation_exception", fmt.Sprintf("Validation Failed: 1: an id is required for a delete operation (line %d);", n))
				continue
			}
			it.status, it.result = http.StatusNotFound, "not_found" // vigil keeps no documents
			continue
		}
		src, sn, ok := bp.next()
		if !ok {
			it.fail(http.StatusBadRequest, "action_request_validation_exception", fmt.Sprintf("Validation Failed: 1: the %s action on line %d has no document line;", opNames[it.op], n))
			return items, extra
		}
		it.srcLine = sn
		switch it.op {
		case opIndex, opCreate:
			it.src = src
			if it.id == "" {
				it.id = p.ids.next()
			}
		case opUpdate:
			if it.id == "" {
				it.fail(http.StatusBadRequest, "action_request_validation_exception", fmt.Sprintf("Validation Failed: 1: an id is required for a update operation (line %d);", n))
				continue
			}
			v, err := bp.p.ParseBytes(src)
			if err != nil || v.Type() != fastjson.TypeObject {
				msg := "not a JSON object"
				if err != nil {
					msg = err.Error()
				}
				p.stats.malformed.Add(1)
				it.fail(http.StatusBadRequest, "document_parsing_exception", fmt.Sprintf("failed to parse the update on line %d: %s", sn, msg))
				continue
			}
			// The partial document, or the document to insert when there
			// is none, is matched; a scripted update has nothing to match.
			doc := v.Get("doc")
			if doc == nil || doc.Type() != fastjson.TypeObject {
				doc = v.Get("upsert")
			}
			if doc == nil || doc.Type() != fastjson.TypeObject {
				it.status, it.result = http.StatusOK, "noop"
				continue
			}
			it.src = doc.MarshalTo(nil)
			extra += int64(len(it.src))
		}
	}
}

// matchBulk matches the documents of a bulk job, each with the next (see
// detect.Engine.MatchAhead): they stay put while the job is matched.
func (p *Pipeline) matchBulk(ctx context.Context, j *job) {
	// toMatch returns the index of the first document at or after i to be
	// matched, or len(j.items).
	toMatch := func(i int) int {
		for i < len(j.items) && (j.items[i].status != 0 || j.items[i].src == nil) {
			i++
		}
		return i
	}
	for i := toMatch(0); i < len(j.items); {
		it := &j.items[i]
		var next []byte
		if i = toMatch(i + 1); i < len(j.items) {
			next = j.items[i].src
		}
		switch out, msg := p.match(ctx, &j.res, it.src, next); out {
		case matched:
			if it.op == opUpdate {
				it.status, it.result = http.StatusOK, "updated"
			} else {
				it.status, it.result = http.StatusCreated, "created"
			}
		case malformed:
			it.fail(http.StatusBadRequest, "document_parsing_exception", fmt.Sprintf("failed to parse the document on line %d: %s", it.srcLine, msg))
		case failed:
			it.fail(http.StatusInternalServerError, "exception", fmt.Sprintf("the document on line %d could not be matched: %s", it.srcLine, msg))
		}
	}
}

// handleBulk is POST|PUT /_bulk and /{index}/_bulk: the Elasticsearch
// bulk API. Every document is matched; the answer has Elasticsearch's
// shape, one item per action, in order.
func (p *Pipeline) handleBulk(es *esWriter, r *http.Request) {
	start := time.Now()
	body, charge, herr := p.readBody(es.w, r)
	if herr != nil {
		es.error(herr)
		return
	}
	j := &job{body: body, charge: charge}
	items, extra := p.parseBulk(body, r.PathValue("index"))
	if herr := p.chargeMore(j, extra); herr != nil {
		es.error(herr)
		return
	}
	j.items = items
	if j.items == nil {
		j.items = []bulkItem{}
	}
	err := p.submit(r.Context(), j)
	defer p.release(j)
	if err != nil {
		es.error(p.submitError(err))
		return
	}
	f := newFilter(r.URL.Query().Get("filter_path"))
	bw := bufio.NewWriterSize(es.w, 64<<10)
	es.header(http.StatusOK)
	p.writeBulk(bw, j.items, time.Since(start).Milliseconds(), f)
	bw.Flush()
}

// item fields, in the order Elasticsearch writes them.
const (
	fIndex = iota
	fID
	fVersion
	fResult
	fShards
	fSeqNo
	fPrimaryTerm
	fStatus
	fError
	nFields
)

var fieldNames = [nFields]string{"_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term", "status", "error"}

// writeBulk writes the bulk answer.
func (p *Pipeline) writeBulk(bw *bufio.Writer, items []bulkItem, took int64, f *filter) {
	errs := false
	for i := range items {
		if items[i].errType != "" {
			errs = true
			break
		}
	}
	var b []byte
	b = append(b, '{')
	sep := func() {
		if len(b) > 1 && b[len(b)-1] != '{' && b[len(b)-1] != '[' {
			b = append(b, ',')
		}
	}
	if f.keep(false, "took") {
		b = append(b, `"took":`...)
		b = strconv.AppendInt(b, took, 10)
	}
	if f.keep(false, "errors") {
		sep()
		b = append(b, `"errors":`...)
		b = strconv.AppendBool(b, errs)
	}
	if f.anyItemField() {
		sep()
		b = append(b, `"items":[`...)
		first := true
		for i := range items {
			n0 := len(b)
			if !first {
				b = append(b, ',')
			}
			n1 := len(b)
			if b = p.appendItem(b, &items[i], f); len(b) == n1 {
				b = b[:n0] // the filter kept none of its fields
				continue
			}
			first = false
			if len(b) >= 32<<10 {
				bw.Write(b)
				b = b[:0]
			}
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	bw.Write(b)
}

// appendItem appends one item, or nothing when the filter keeps none of
// its fields.
func (p *Pipeline) appendItem(b []byte, it *bulkItem, f *filter) []byte {
	op := it.op
	start := len(b)
	b = append(b, `{"`...)
	b = append(b, opNames[op]...)
	b = append(b, `":{`...)
	first := len(b)
	field := func(k int) bool {
		if !f.keepField(op, k) {
			return false
		}
		if len(b) > first {
			b = append(b, ',')
		}
		b = append(b, fieldKeys[k]...)
		return true
	}
	if it.index != "" && field(fIndex) {
		b = ecs.AppendString(b, it.index)
	}
	if it.id != "" && field(fID) {
		b = ecs.AppendString(b, it.id)
	}
	if it.errType == "" {
		if field(fVersion) {
			b = append(b, '1')
		}
		if field(fResult) {
			b = ecs.AppendString(b, it.result)
		}
		if field(fShards) {
			if it.result == "noop" {
				b = append(b, `{"total":0,"successful":0,"failed":0}`...)
			} else {
				b = append(b, `{"total":1,"successful":1,"failed":0}`...)
			}
		}
		if field(fSeqNo) {
			b = strconv.AppendInt(b, p.seqNo.Add(1)-1, 10)
		}
		if field(fPrimaryTerm) {
			b = append(b, '1')
		}
	}
	if field(fStatus) {
		b = strconv.AppendUint(b, uint64(it.status), 10)
	}
	if it.errType != "" && field(fError) {
		b = append(b, `{"type":`...)
		b = ecs.AppendString(b, it.errType)
		b = append(b, `,"reason":`...)
		b = ecs.AppendString(b, it.reason)
		b = append(b, '}')
	}
	if len(b) == first {
		return b[:start]
	}
	return append(b, '}', '}')
}

// fieldKeys are the item fields' keys as written: "name":.
var fieldKeys = func() (k [nFields]string) {
	for i, n := range fieldNames {
		k[i] = `"` + n + `":`
	}
	return k
}()

// filter is a filter_path: comma-separated dotted paths, with * and ?
// within a name and ** for any number of names. A field is kept when a
// path names it or one of its parents; an object field (_shards, error)
// also when a path names one of its children.
type filter struct {
	paths  [][]string
	fields [len(opNames)][nFields]bool
	anyOp  bool
}

func newFilter(fp string) *filter {
	f := &filter{}
	for _, s := range strings.Split(fp, ",") {
		if s = strings.TrimSpace(s); s != "" && !strings.HasPrefix(s, "-") {
			f.paths = append(f.paths, strings.Split(s, "."))
		}
	}
	for op := range opNames {
		for k := range nFields {
			f.fields[op][k] = f.keep(k == fShards || k == fError, "items", opNames[op], fieldNames[k])
			f.anyOp = f.anyOp || f.fields[op][k]
		}
	}
	return f
}

// keep reports whether the field at path is written; object says it has
// children.
func (f *filter) keep(object bool, path ...string) bool {
	if len(f.paths) == 0 {
		return true
	}
	for _, p := range f.paths {
		full, partial := matchPath(p, path)
		if full || (object && partial && !slices.Contains(p, "**")) {
			return true
		}
	}
	return false
}

func (f *filter) keepField(op uint8, k int) bool { return f.fields[op][k] }

func (f *filter) anyItemField() bool { return f.anyOp }

// matchPath reports whether pat names path or a parent of it (full), or a
// child of it (partial).
func matchPath(pat, p []string) (full, partial bool) {
	switch {
	case len(pat) == 0:
		return true, false
	case pat[0] == "**":
		f1, _ := matchPath(pat[1:], p)
		if len(p) == 0 {
			return f1, true
		}
		f2, _ := matchPath(pat, p[1:])
		return f1 || f2, true
	case len(p) == 0:
		return false, true
	}
	if ok, _ := path.Match(pat[0], p[0]); !ok {
		return false, false
	}
	return matchPath(pat[1:], p[1:])
}

// handleDoc is the single-document index API: POST /{index}/_doc,
// PUT|POST /{index}/_doc/{id} and /{index}/_create/{id}. The document is
// matched; the answer has Elasticsearch's shape.
func (p *Pipeline) handleDoc(es *esWriter, r *http.Request) {
	body, charge, herr := p.readBody(es.w, r)
	if herr != nil {
		es.error(herr)
		return
	}
	j := &job{body: body, charge: charge}
	it := bulkItem{op: opIndex, index: r.PathValue("index"), id: r.PathValue("id"), src: bytes.TrimSpace(body), line: 1, srcLine: 1}
	if r.PathValue("op") == "create" {
		it.op = opCreate
	}
	if it.id == "" {
		it.id = p.ids.next()
	}
	j.items = []bulkItem{it}
	err := p.submit(r.Context(), j)
	defer p.release(j)
	if err != nil {
		es.error(p.submitError(err))
		return
	}
	it = j.items[0]
	if it.errType != "" {
		es.error(&httpError{int(it.status), it.errType, it.reason})
		return
	}
	es.json(int(it.status), map[string]any{
		"_index": it.index, "_id": it.id, "_version": 1, "result": it.result,
		"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0},
		"_seq_no": p.seqNo.Add(1) - 1, "_primary_term": 1,
	})
}
