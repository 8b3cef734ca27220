package notify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/notify"
	"github.com/vigil-ti/vigil/internal/notify/notifytest"
)

// BenchmarkDeliverWebhook measures the outbox end to end: queue alerts in
// the SQLite store, then deliver them all to a webhook receiver on
// loopback (one request and one outbox write per alert).
func BenchmarkDeliverWebhook(b *testing.B) {
	n := 2000
	if testing.Short() {
		n = 50
	}
	clk := fixedClock(t0)
	r := notifytest.NewReceiver(b)
	w, err := notify.NewWebhook(notify.WebhookSettings{Name: "hook", URL: r.URL})
	if err != nil {
		b.Fatal(err)
	}
	var total int
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		db := openStore(b, b.TempDir(), clk)
		ds := make([]vigil.Delivery, n)
		for j := range ds {
			ds[j] = alert(fmt.Sprintf("alert-%d-%d", i, j))
			ds[j].Connector = "hook"
		}
		b.StartTimer()
		start := time.Now()
		if err := db.Enqueue(b.Context(), ds); err != nil {
			b.Fatal(err)
		}
		st, err := notify.NewDeliverer(db, map[string]notify.Connector{"hook": w}, notify.Options{Clock: clk}).DeliverOnce(b.Context())
		if err != nil || st.Delivered != n {
			b.Fatalf("%+v, %v", st, err)
		}
		elapsed += time.Since(start)
		total += n
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "alerts/s")
}
