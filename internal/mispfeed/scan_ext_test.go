package mispfeed_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/mispfeed"
)

// liveFunc is a mispfeed.LiveReader made of a function.
type liveFunc func(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error

func (l liveFunc) Live(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
	return l(ctx, f, fn)
}

// domains returns n domain indicator documents.
func domains(n int) []vigil.Document {
	docs := make([]vigil.Document, n)
	for i := range docs {
		docs[i] = ioc("domain-name", fmt.Sprintf("d%d.example", i), iocOpts{})
	}
	return docs
}

// waitGoroutines fails t unless the goroutines are back to before within
// 5 seconds.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	for range 500 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d goroutines, %d before the pull", runtime.NumGoroutine(), before)
}

// TestPullCanceled cancels a pull while it reads the group (from the real
// store, which stops at the cancellation) on several goroutines: the pull
// fails with the context's error, records nothing, and the read's
// goroutines end. Then a pull of all 3,000 IOCs succeeds.
func TestPullCanceled(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(domains(3000)...)
	for _, after := range []int{1, 700, 2999} {
		before := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		live := liveFunc(func(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
			return e.db.Live(ctx, f, func(d vigil.Document) error {
				if n++; n == after {
					cancel()
				}
				if err := ctx.Err(); err != nil {
					return err // as a store that reads in many steps would
				}
				return fn(d)
			})
		})
		svc := &mispfeed.Service{Store: e.db.MISP(), Live: live, Config: e.cfg, Clock: e.clock}
		if _, err := svc.Pull(ctx, e.device("SOC MISP"), "all"); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled after %d documents: %v", after, err)
		}
		waitGoroutines(t, before)
	}
	// Nothing was recorded: the device has not pulled.
	if d := e.device("SOC MISP"); d.Synced() {
		t.Error("a canceled pull was recorded")
	}
	// Uncanceled, the pull gives all of them (encoded on several
	// goroutines too), once.
	st, err := e.svc.Pull(t.Context(), e.device("SOC MISP"), "all")
	if err != nil || st.Added != 3000 || st.Live != 3000 {
		t.Fatalf("%+v %v", st, err)
	}
	ev, ok, err := e.db.MISP().DayEvent(t.Context(), e.device("SOC MISP").ID, "all", t0.Format(time.DateOnly))
	if err != nil || !ok || ev.Attributes != 3000 {
		t.Fatalf("%+v %v %v", ev, ok, err)
	}
}

// TestPullPanic: a panic while the pull reads the group (here in the
// store's Live, on the read's goroutine) is raised again by Pull, on the
// caller's goroutine, where net/http recovers it as it did before the read
// had goroutines of its own; they end.
func TestPullPanic(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(domains(1000)...)
	before := runtime.NumGoroutine()
	n := 0
	live := liveFunc(func(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
		return e.db.Live(ctx, f, func(d vigil.Document) error {
			if n++; n == 600 {
				panic("store bug")
			}
			return fn(d)
		})
	})
	svc := &mispfeed.Service{Store: e.db.MISP(), Live: live, Config: e.cfg, Clock: e.clock}
	func() {
		defer func() {
			if v := recover(); v != "store bug" {
				t.Errorf("recovered %v", v)
			}
		}()
		st, err := svc.Pull(t.Context(), e.device("SOC MISP"), "all")
		t.Errorf("Pull returned %+v %v", st, err)
	}()
	waitGoroutines(t, before)
}
