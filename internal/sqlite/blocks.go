package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// A raw segment's NDJSON is cut into blocks of about blockSize bytes at
// document boundaries, each block s2-encoded on its own and stored as a row
// of raw_blocks keyed by blockID(seg, start). The segment's blocks column
// lists them:
//
//	uvarint  number of blocks, then per block:
//	         uvarint plain length; uvarint encoded length
//
// so that one document is read by reading and decoding its block alone
// (detection reads the indicators it matched this way). A segment of the
// first schema has a NULL blocks column and its whole NDJSON encoded as one
// block in its body column.
//
// 32 KiB blocks compress IOC documents about 4.7 times, against 6.1 for a
// whole page as one block, at the same speed; a point read decodes 32 KiB
// instead of a whole page (a megabyte or more), and ingest measured the
// same with 32 and 128 KiB blocks.
const blockSize = 32 << 10

// encodeBlocks writes the s2 encoding of raw, cut into blocks at the ends
// of documents (ends, ascending), to dst, end to end, and the block list to
// list.
func encodeBlocks(dst, list, raw []byte, ends []int) ([]byte, []byte) {
	var cuts []int
	start := 0
	for _, e := range ends {
		if e-start >= blockSize {
			cuts = append(cuts, e)
			start = e
		}
	}
	if start < len(raw) {
		cuts = append(cuts, len(raw))
	}
	list = binary.AppendUvarint(list[:0], uint64(len(cuts)))
	dst = dst[:0]
	start = 0
	for _, c := range cuts {
		block := raw[start:c]
		need := len(dst) + s2.MaxEncodedLen(len(block))
		if cap(dst) < need {
			grown := make([]byte, len(dst), need+need/4)
			copy(grown, dst)
			dst = grown
		}
		enc := s2.Encode(dst[len(dst):need], block)
		dst = dst[:len(dst)+len(enc)]
		list = binary.AppendUvarint(list, uint64(len(block)))
		list = binary.AppendUvarint(list, uint64(len(enc)))
		start = c
	}
	return dst, list
}

// blockID is the raw_blocks key of the block of segment seg that starts at
// start in its NDJSON: seg * 2^32 + start. A segment's blocks are the keys
// segmentBlocks returns, in order.
func blockID(seg, start int64) int64 { return seg<<32 | start }

// segmentBlocks returns the range of raw_blocks keys of segment seg.
func segmentBlocks(seg int64) (lo, hi int64) { return seg << 32, seg<<32 | maxBlockStart }

// maxBlockStart bounds where a block may start in its segment's NDJSON.
const maxBlockStart = 1<<32 - 1

// blockSpan is one block: where its plain bytes and its encoding sit.
type blockSpan struct {
	plain, plainEnd int
	enc, encEnd     int
}

// readBlocks decodes a block list.
func readBlocks(list []byte) ([]blockSpan, error) {
	n, k := binary.Uvarint(list)
	if k <= 0 || n > uint64(len(list)) {
		return nil, errCorrupt
	}
	list = list[k:]
	spans := make([]blockSpan, 0, n)
	var p, e int
	for range n {
		pl, k1 := binary.Uvarint(list)
		if k1 <= 0 {
			return nil, errCorrupt
		}
		el, k2 := binary.Uvarint(list[k1:])
		if k2 <= 0 || el > 1<<40 || pl > 1<<40 {
			return nil, errCorrupt
		}
		list = list[k1+k2:]
		spans = append(spans, blockSpan{plain: p, plainEnd: p + int(pl), enc: e, encEnd: e + int(el)})
		p += int(pl)
		e += int(el)
	}
	return spans, nil
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// segmentPlain returns a segment's whole NDJSON, in a buffer of its own,
// given its body and blocks columns.
func segmentPlain(ctx context.Context, q queryer, id int64, body, list []byte) ([]byte, error) {
	plain, _, err := segmentPlainSpans(ctx, q, id, body, list, nil)
	return plain, err
}

// segmentPlainSpans is segmentPlain that also returns the segment's
// blocks (none for a segment of the first schema), decoding into buf when
// it is large enough.
func segmentPlainSpans(ctx context.Context, q queryer, id int64, body, list, buf []byte) ([]byte, []blockSpan, error) {
	if list == nil {
		plain, err := s2.Decode(buf[:cap(buf)], body)
		if err != nil {
			return nil, nil, fmt.Errorf("store: raw segment %d is corrupt: %w", id, err)
		}
		return plain, nil, nil
	}
	spans, err := readBlocks(list)
	if err != nil {
		return nil, nil, fmt.Errorf("store: raw segment %d: %w", id, err)
	}
	total := 0
	if len(spans) > 0 {
		total = spans[len(spans)-1].plainEnd
	}
	plain := buf[:0]
	if cap(plain) < total {
		plain = make([]byte, total)
	}
	plain = plain[:total]
	lo, hi := segmentBlocks(id)
	rows, err := q.QueryContext(ctx, `SELECT id - ?, data FROM raw_blocks WHERE id BETWEEN ? AND ? ORDER BY id`, lo, lo, hi)
	if err != nil {
		return nil, nil, fmt.Errorf("store: read raw segment %d: %w", id, err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var start int
		var data sql.RawBytes
		if err := rows.Scan(&start, &data); err != nil {
			return nil, nil, fmt.Errorf("store: read raw segment %d: %w", id, err)
		}
		if got >= len(spans) || start != spans[got].plain {
			return nil, nil, fmt.Errorf("store: raw segment %d: block at %d: %w", id, start, errCorrupt)
		}
		s := spans[got]
		out, err := s2.Decode(plain[s.plain:s.plainEnd], data)
		if err != nil || len(out) != s.plainEnd-s.plain {
			return nil, nil, fmt.Errorf("store: raw segment %d is corrupt: block at %d: %v", id, start, err)
		}
		got++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: read raw segment %d: %w", id, err)
	}
	if got != len(spans) {
		return nil, nil, fmt.Errorf("store: raw segment %d: %d of %d blocks: %w", id, got, len(spans), errCorrupt)
	}
	return plain, spans, nil
}

// blockDoc returns the document at [off-start, off-start+n) of a block
// (the block starting at start in its segment's NDJSON), decoding it.
func blockDoc(id, start int64, data []byte, off, n int64) ([]byte, error) {
	doc, _, err := blockDocInto(nil, id, start, data, off, n)
	return doc, err
}

// blockDocInto is blockDoc decoding into buf when it is large enough; it
// also returns the decoded block, which the document views.
func blockDocInto(buf []byte, id, start int64, data []byte, off, n int64) (doc, plain []byte, err error) {
	plain, err = s2.Decode(buf[:cap(buf)], data)
	if err != nil {
		return nil, nil, fmt.Errorf("store: raw segment %d is corrupt: block at %d: %w", id, start, err)
	}
	i := off - start
	if i < 0 || i > int64(len(plain)) || n > int64(len(plain))-i {
		return nil, plain, fmt.Errorf("store: raw segment %d: block at %d does not hold [%d, %d): %w", id, start, off, off+n, errCorrupt)
	}
	return plain[i : i+n : i+n], plain, nil
}

// legacyDoc returns the document at [off, off+n) of a first-schema segment,
// whose NDJSON is one block in its body column.
func legacyDoc(ctx context.Context, q queryer, id, off, n int64) ([]byte, error) {
	var body []byte
	if err := q.QueryRowContext(ctx, `SELECT body FROM raw_segments WHERE id = ?`, id).Scan(&body); err != nil {
		return nil, fmt.Errorf("store: read raw segment %d: %w", id, err)
	}
	plain, err := segmentPlain(ctx, q, id, body, nil)
	if err != nil {
		return nil, err
	}
	if off < 0 || off > int64(len(plain)) || n > int64(len(plain))-off {
		return nil, fmt.Errorf("store: raw segment %d: %w", id, errCorrupt)
	}
	return plain[off : off+n : off+n], nil
}

// insertBlocks writes a segment's encoded blocks (enc, end to end, as list
// lists them) as rows of raw_blocks; v1: of migration 0002's raw_blocks.
func insertBlocks(ctx context.Context, tx *sql.Tx, seg int64, enc, list []byte, v1 bool) error {
	spans, err := readBlocks(list)
	if err != nil {
		return err
	}
	for _, s := range spans {
		if s.encEnd > len(enc) {
			return errCorrupt
		}
		if s.plain > maxBlockStart {
			return fmt.Errorf("a segment's NDJSON is larger than %d bytes", maxBlockStart)
		}
		var err error
		if v1 {
			_, err = tx.ExecContext(ctx, `INSERT INTO raw_blocks (seg, start, data) VALUES (?, ?, ?)`, seg, s.plain, enc[s.enc:s.encEnd])
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO raw_blocks (id, data) VALUES (?, ?)`, blockID(seg, int64(s.plain)), enc[s.enc:s.encEnd])
		}
		if err != nil {
			return err
		}
	}
	return nil
}
