package sqlite

import "testing"

// TestCacheKiB checks the writer's page cache: the default, and the one
// Options.CacheKiB asks for (vigil match's).
func TestCacheKiB(t *testing.T) {
	for _, c := range []struct {
		opt, want int
	}{{0, cacheKiB}, {4096, 4096}} {
		db, err := Open(t.Context(), t.TempDir(), Options{CacheKiB: c.opt})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := db.rw.QueryRowContext(t.Context(), `PRAGMA cache_size`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != -c.want {
			t.Errorf("CacheKiB %d: cache_size %d, want %d", c.opt, got, -c.want)
		}
	}
}
