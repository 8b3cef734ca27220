package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// liveInserter runs a merge batch's live inserts (insertSQL) on the
// driver's connection itself. Through database/sql, every call converts
// each argument and allocates a []driver.NamedValue of them: 80 KB for a
// chunk of upsertRows documents, a large object that the runtime gets
// fresh pages for, faulting them in (most of the kernel's time in a merge).
// The inserter reuses one, and its prepared statement, for the batch.
type liveInserter struct {
	conn *sql.Conn   // the merge transaction's connection
	full driver.Stmt // insertSQL(upsertRows), prepared on first use
	nv   []driver.NamedValue
}

// insert inserts the documents of args (upsertArgs each, as upsertSQL
// binds them) with insertSQL.
func (li *liveInserter) insert(ctx context.Context, args []any) error {
	n := len(args) / upsertArgs
	nv := li.nv[:0]
	for i, a := range args {
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	li.nv = nv
	defer clear(nv)
	return li.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		stmt := li.full
		if n != upsertRows || stmt == nil {
			s, err := c.PrepareContext(ctx, insertSQL(n))
			if err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			if n == upsertRows {
				li.full = s
			} else {
				defer s.Close()
			}
			stmt = s
		}
		q, ok := stmt.(driver.StmtQueryContext)
		if !ok {
			return fmt.Errorf("driver statement %T cannot query", stmt)
		}
		// As a query: the driver binds a query's parameters in one call.
		rows, err := q.QueryContext(ctx, nv)
		if err != nil {
			return err
		}
		return rows.Close()
	})
}

// close closes the statement the inserter prepared.
func (li *liveInserter) close() error {
	if li.full == nil {
		return nil
	}
	err := li.conn.Raw(func(any) error { return li.full.Close() })
	li.full = nil
	return err
}
