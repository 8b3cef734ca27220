// Package importer loads local indicator lists into the vigil.import
// dataset: plain text (one value a line, its type detected), CSV with a
// header naming a value column, and ECS indicator documents as NDJSON,
// each optionally gzipped. Every value becomes an ECS indicator document
// (a CVE id a vulnerability document) keyed by its type and normal form,
// so importing a value again updates it, and expiring as the sources'
// indicators do: ioc_expiration_duration after its timestamp.
//
// A line that cannot be imported is reported with its file and number and
// skipped; the rest of the file loads.
package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
)

// Format is an input format.
type Format string

// The input formats.
const (
	FormatText   Format = "text"
	FormatCSV    Format = "csv"
	FormatNDJSON Format = "ndjson"
)

// Formats lists the formats, for messages.
var Formats = []Format{FormatText, FormatCSV, FormatNDJSON}

// ParseFormat returns the format named s.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (allowed: text, csv, ndjson)", s)
}

// DefaultPageSize is how many documents are written per page.
const DefaultPageSize = 5000

// maxLine is the longest line read; a longer one is a bad line.
const maxLine = 1 << 20

// Options configure an Importer.
type Options struct {
	Store vigil.Store
	// Clock gives the import's time: event.ingested, the timestamp of
	// records without a date of their own, and what has expired already.
	// Nil is the system clock.
	Clock vigil.Clock
	// Provider is threat.indicator.provider and threat.feed.name of the
	// records that name none. Required.
	Provider string
	// ExpirationDuration is ioc_expiration_duration, e.g. "90d" (see
	// ecs.ParseExpiration): a document leaves the live view that long
	// after its timestamp. Required.
	ExpirationDuration string
	// Type forces the type of every value (one of Types); "" detects it.
	// A CSV type column still wins for its rows.
	Type string
	// Format forces the format; "" detects it from the file name, then
	// from the content.
	Format Format
	// Column names the CSV value column; "" looks for value, indicator or
	// ioc.
	Column string
	// PageSize is how many documents go in one page (DefaultPageSize when
	// 0).
	PageSize int
	// OnBad is called for each bad line; nil ignores them (they are still
	// counted).
	OnBad func(BadLine)
}

// BadLine is a line that was skipped.
type BadLine struct {
	File string
	Line int
	Err  error
}

func (b BadLine) String() string { return fmt.Sprintf("%s:%d: %v", b.File, b.Line, b.Err) }

// FileStats counts what an import of one file did.
type FileStats struct {
	File   string
	Format Format
	// Read counts the records read: lines other than blank lines,
	// comments and a CSV header.
	Read     int
	Imported int // documents written
	Bad      int // records skipped
	// Expired counts the documents imported whose expiry had already
	// passed (their own date is older than the expiration duration): they
	// are stored but not live.
	Expired int
}

// Importer imports files. It is not safe for concurrent use.
//
// A file is read and its documents built on one goroutine while the pages
// already built are written on another, so an import uses two cores and
// the reading overlaps the store's I/O.
type Importer struct {
	opts  Options
	b     builder
	page  *page // the page being filled
	stats *FileStats
	ndj   ndjsonReader
	csv   csvReader
	rec   record
	w     writer
}

// writer writes the pages of one file on its own goroutine.
type writer struct {
	full chan *page // pages to write; closed at the end of the file
	free chan *page // written pages, to fill again
	done chan struct{}
	// failed is set once a write failed; err (read after done) says why.
	failed            atomic.Bool
	err               error
	imported, expired int
}

// pagesInFlight is how many pages exist per import: one filling, one
// being written, one waiting.
const pagesInFlight = 3

// New checks opts and returns an Importer.
func New(opts Options) (*Importer, error) {
	if opts.Store == nil {
		return nil, errors.New("import: no store")
	}
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if strings.TrimSpace(opts.Provider) == "" {
		return nil, errors.New("import: the provider must not be empty")
	}
	d, _, err := ecs.ParseExpiration(opts.ExpirationDuration)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if opts.Type != "" {
		if _, err := ParseType(opts.Type, false); err != nil {
			return nil, fmt.Errorf("import: --type: %w", err)
		}
	}
	if opts.Format != "" {
		if _, err := ParseFormat(string(opts.Format)); err != nil {
			return nil, fmt.Errorf("import: --format: %w", err)
		}
	}
	im := &Importer{opts: opts}
	im.w.free = make(chan *page, pagesInFlight)
	for range pagesInFlight {
		im.w.free <- new(page)
	}
	im.b.provider = opts.Provider
	im.b.typ = opts.Type
	im.b.expStr = opts.ExpirationDuration
	im.b.expDur = d
	im.csv.column = opts.Column
	return im, nil
}

// File imports the file at path. Pages are written as they fill; the
// caller Syncs the store when every file is done. The error is about the
// file as a whole (missing, unreadable, not CSV with a value column); what
// was read before it is imported.
func (im *Importer) File(ctx context.Context, path string) (FileStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileStats{File: path}, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	return im.Read(ctx, path, f)
}

// Read imports r, named name (for messages, vigil.import.file, and the
// format by its extension).
func (im *Importer) Read(ctx context.Context, name string, r io.Reader) (FileStats, error) {
	st := FileStats{File: name}
	im.stats = &st
	im.b.start(filepath.Base(name), im.opts.Clock.Now())
	im.startWriter(ctx)
	err := im.read(ctx, name, r)
	if werr := im.stopWriter(); werr != nil {
		err = werr // what was read after it was not written
	}
	st.Imported, st.Expired = im.w.imported, im.w.expired
	im.stats = nil
	return st, err
}

// startWriter starts the writer goroutine of a file and takes a page to
// fill.
func (im *Importer) startWriter(ctx context.Context) {
	w := &im.w
	w.full = make(chan *page, pagesInFlight)
	w.done = make(chan struct{})
	w.failed.Store(false)
	w.err, w.imported, w.expired = nil, 0, 0
	im.page = im.nextPage()
	go func() {
		defer close(w.done)
		for p := range w.full {
			if !w.failed.Load() {
				st, err := im.opts.Store.WritePage(ctx, vigil.Page{Source: SourceName, Dataset: Dataset, Docs: p.docs})
				if err != nil {
					w.err = fmt.Errorf("import: %s: %w", im.stats.File, err)
					w.failed.Store(true)
				} else {
					w.imported += st.Raw
					w.expired += p.expired
				}
			}
			p.reset()
			w.free <- p
		}
	}()
}

// nextPage returns an empty page, waiting for one to be written if none
// is free.
func (im *Importer) nextPage() *page {
	p := <-im.w.free
	p.now = im.b.now
	return p
}

// stopWriter hands over the last page, waits for every page to be
// written and returns the first write error.
func (im *Importer) stopWriter() error {
	w := &im.w
	if len(im.page.docs) > 0 {
		w.full <- im.page
	} else {
		w.free <- im.page
	}
	im.page = nil
	close(w.full)
	<-w.done
	return w.err
}

func (im *Importer) read(ctx context.Context, name string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("import: %s: gzip: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	format := im.opts.Format
	if format == "" {
		format = im.detectFormat(name, br)
	}
	im.stats.Format = format
	lr := lineReader{r: br}
	var err error
	switch format {
	case FormatCSV:
		err = im.readCSV(ctx, &lr)
	case FormatNDJSON:
		err = im.readLines(ctx, &lr, false, func(line []byte) error {
			return im.ndj.build(&im.b, line, im.page)
		})
	default:
		err = im.readLines(ctx, &lr, true, func(line []byte) error {
			im.rec = record{value: b2s(line)}
			return im.b.build(&im.rec, im.page)
		})
	}
	if err != nil {
		return err
	}
	if lr.err != nil {
		return fmt.Errorf("import: %s: line %d: %w", name, lr.n, lr.err)
	}
	return nil
}

// detectFormat picks the format by the file's extension (under .gz), else
// by its first line that is not blank or a comment: an object is NDJSON,
// a header naming a value column is CSV, anything else text.
func (im *Importer) detectFormat(name string, br *bufio.Reader) Format {
	base := strings.ToLower(filepath.Base(name))
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".gzip")
	switch filepath.Ext(base) {
	case ".txt", ".list", ".lst":
		return FormatText
	case ".csv", ".tsv":
		return FormatCSV
	case ".ndjson", ".jsonl", ".json":
		return FormatNDJSON
	}
	peek, _ := br.Peek(64 << 10)
	peek = bytes.TrimPrefix(peek, bom)
	for len(peek) > 0 {
		line := peek
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			line, peek = peek[:i], peek[i+1:]
		} else {
			peek = nil
		}
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		switch {
		case s[0] == '{':
			return FormatNDJSON
		case strings.ContainsAny(s, ",\t;") && im.csv.isHeader(s):
			return FormatCSV
		case im.opts.Column != "" && im.csv.isHeader(s):
			return FormatCSV
		}
		return FormatText
	}
	return FormatText
}

var bom = []byte("\xef\xbb\xbf")

// readLines calls build for each line that is not blank or a comment,
// trimmed. With text, a comment may also follow a value (after white
// space, '#' or ';' to the end of the line), and ';' starts a comment line.
func (im *Importer) readLines(ctx context.Context, lr *lineReader, text bool, build func([]byte) error) error {
	for {
		line, tooLong, ok := lr.next()
		if !ok {
			return nil
		}
		if tooLong {
			im.stats.Read++
			im.bad(lr.n, fmt.Errorf("line longer than %d bytes", maxLine))
			continue
		}
		line = trimSpace(line)
		if len(line) == 0 || line[0] == '#' || text && line[0] == ';' {
			continue
		}
		if text {
			line = cutComment(line)
		}
		im.stats.Read++
		if err := build(line); err != nil {
			im.bad(lr.n, err)
			continue
		}
		if err := im.maybeFlush(ctx); err != nil {
			return err
		}
	}
}

// readCSV reads the header, then the records.
func (im *Importer) readCSV(ctx context.Context, lr *lineReader) error {
	c := &im.csv
	c.header, c.lastComment = c.header[:0], ""
	headerLine := 0
	for headerLine == 0 {
		line, tooLong, ok := lr.next()
		if !ok {
			return nil // an empty file
		}
		if tooLong {
			return fmt.Errorf("import: %s: line %d: header longer than %d bytes", im.stats.File, lr.n, maxLine)
		}
		s := string(trimSpace(line))
		if s == "" {
			continue
		}
		if s[0] == '#' {
			c.lastComment = strings.TrimSpace(s[1:])
			continue
		}
		if err := c.setHeader(s); err != nil {
			// A list whose header is commented out: the last comment
			// is the header and this line the first record.
			if c.lastComment == "" || c.setHeader(c.lastComment) != nil {
				return fmt.Errorf("import: %s: line %d: %w", im.stats.File, lr.n, err)
			}
			headerLine = lr.n
			if err := im.csvRecord(ctx, lr.n, s); err != nil {
				return err
			}
			break
		}
		headerLine = lr.n
	}
	return im.readLines(ctx, lr, false, func(line []byte) error {
		if err := c.record(b2s(line), &im.rec); err != nil {
			return err
		}
		return im.b.build(&im.rec, im.page)
	})
}

// csvRecord imports one CSV record outside readLines.
func (im *Importer) csvRecord(ctx context.Context, n int, s string) error {
	im.stats.Read++
	err := im.csv.record(s, &im.rec)
	if err == nil {
		err = im.b.build(&im.rec, im.page)
	}
	if err != nil {
		im.bad(n, err)
		return nil
	}
	return im.maybeFlush(ctx)
}

func (im *Importer) bad(line int, err error) {
	im.stats.Bad++
	if im.opts.OnBad != nil {
		im.opts.OnBad(BadLine{File: im.stats.File, Line: line, Err: err})
	}
}

// maybeFlush hands a full page to the writer. It fails once a write
// failed, or ctx is done, to stop the reading.
func (im *Importer) maybeFlush(ctx context.Context) error {
	if len(im.page.docs) < im.opts.PageSize {
		return nil
	}
	if im.w.failed.Load() {
		return errWriteFailed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("import: %s: %w", im.stats.File, err)
	}
	im.w.full <- im.page
	im.page = im.nextPage()
	return nil
}

// errWriteFailed stops the reading of a file whose writer failed; Read
// returns the writer's error instead.
var errWriteFailed = errors.New("import: a page could not be written")

// lineReader reads lines, numbering them, without their "\n" or "\r\n"
// and without a byte order mark at the start of the input.
type lineReader struct {
	r    *bufio.Reader
	n    int
	long []byte
	done bool
	err  error // the read error that ended the input, if not EOF
}

// next returns the next line. tooLong reports a line longer than maxLine,
// which is skipped. ok is false at the end of the input.
func (lr *lineReader) next() (line []byte, tooLong, ok bool) {
	if lr.done {
		return nil, false, false
	}
	line, err := lr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.long = append(lr.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = lr.r.ReadSlice('\n')
			if len(lr.long) <= maxLine {
				lr.long = append(lr.long, line...)
			}
		}
		line = lr.long
	}
	if err != nil {
		lr.done = true
		if !errors.Is(err, io.EOF) {
			lr.err = err
			return nil, false, false
		}
		if len(line) == 0 {
			return nil, false, false
		}
	}
	lr.n++
	if lr.n == 1 {
		line = bytes.TrimPrefix(line, bom)
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > maxLine {
		return nil, true, true
	}
	return line, false, true
}

// trimSpace trims ASCII white space.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// cutComment removes a comment after a value: white space then '#' or ';'
// to the end of the line.
func cutComment(line []byte) []byte {
	for i := 1; i < len(line); i++ {
		if (line[i] == '#' || line[i] == ';') && isSpace(line[i-1]) {
			return trimSpace(line[:i])
		}
	}
	return line
}
