package sqlite

import (
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
)

// TestEnqueueTx checks that deliveries queued in a caller's transaction
// are queued when it commits, and not at all when it rolls back.
func TestEnqueueTx(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	db, err := Open(ctx, t.TempDir(), Options{Clock: vigil.ClockFunc(func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inTx := func(key string, commit bool) {
		t.Helper()
		tx, err := db.rw.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := db.enqueueTx(ctx, tx, []vigil.Delivery{{Key: key, Connector: "hook", Body: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	inTx("rolled-back", false)
	inTx("committed", true)
	ds, err := db.DueDeliveries(ctx, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Key != "committed" {
		t.Fatalf("due %+v, want only the committed delivery", ds)
	}
	if err := db.enqueueTx(ctx, nil, []vigil.Delivery{{Key: "", Connector: "hook"}}); err == nil {
		t.Fatal("an empty key was accepted")
	}
}
