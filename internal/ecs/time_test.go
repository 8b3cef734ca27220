package ecs

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendTimeMatchesFormat(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	times := []time.Time{
		time.Unix(minUnix, 0), time.Unix(maxUnix, 999999999), time.Unix(minUnix-1, 0), time.Unix(maxUnix+1, 0),
		time.Unix(0, 0), time.Unix(-1, 999000000), time.Date(2000, 2, 29, 23, 59, 59, 0, time.UTC),
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), {},
	}
	for range 200000 {
		times = append(times, time.Unix(minUnix+r.Int64N(maxUnix-minUnix+1), r.Int64N(1e9)))
	}
	for _, tt := range times {
		for _, layout := range []string{TimeLayout, TimeLayoutSeconds, time.RFC3339} {
			want := tt.UTC().Format(layout)
			if got := string(AppendTime(nil, tt, layout)); got != want {
				t.Fatalf("AppendTime(%v, %q) = %q, want %q", tt, layout, got, want)
			}
		}
	}
}

func TestDaysSinceEpoch(t *testing.T) {
	for y := 0; y <= 9999; y++ {
		for m := 1; m <= 12; m++ {
			for _, d := range []int{1, daysIn(time.Month(m), y)} {
				want := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
				if got := daysSinceEpoch(y, m, d); got != want {
					t.Fatalf("daysSinceEpoch(%d, %d, %d) = %d, want %d", y, m, d, got, want)
				}
				if yy, mm, dd := civil(want); yy != y || mm != m || dd != d {
					t.Fatalf("civil(%d) = %d-%d-%d, want %d-%d-%d", want, yy, mm, dd, y, m, d)
				}
			}
		}
	}
}

// refParseTime is ParseTime's result as time.Date computes it.
func refParseTime(year, month, day, hour, minute, sec, nsec, offset int) time.Time {
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC).Add(-time.Duration(offset) * time.Second)
}

func TestParseTimeMatchesDate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 100000 {
		year, month := r.IntN(10000), 1+r.IntN(12)
		day := 1 + r.IntN(daysIn(time.Month(month), year))
		hour, minute, sec, ms := r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000)
		tt := time.Date(year, time.Month(month), day, hour, minute, sec, ms*1e6, time.UTC)
		s := tt.Format(TimeLayout)
		got, ok := ParseTime(s)
		if want := refParseTime(year, month, day, hour, minute, sec, ms*1e6, 0); !ok || got != want {
			t.Fatalf("ParseTime(%q) = %v, %v; want %v", s, got, ok, want)
		}
		oh, om := r.IntN(19), r.IntN(60)
		sign := 1 - 2*r.IntN(2)
		z := time.FixedZone("", sign*(oh*3600+om*60))
		s = tt.Format("2006-01-02T15:04:05.999999999") + z.String()
		s = time.Date(year, time.Month(month), day, hour, minute, sec, ms*1e6+r.IntN(1e6), z).Format("2006-01-02T15:04:05.000000-07:00")
		got, ok = ParseTime(s)
		want, err := time.Parse("2006-01-02T15:04:05.000000-07:00", s)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || got != want.UTC() {
			t.Fatalf("ParseTime(%q) = %v, %v; want %v", s, got, ok, want.UTC())
		}
	}
	for _, s := range []string{"2024-02-30T00:00:00.000Z", "2023-02-29T00:00:00.000Z", "2024-13-01T00:00:00.000Z",
		"2024-00-01T00:00:00.000Z", "2024-01-00T00:00:00.000Z", "2024-01-01T24:00:00.000Z", "2024-01-01T00:60:00.000Z",
		"2024-01-01T00:00:60.000Z", "2024-01-01T00:00:00.00aZ", "2024-01-01T00:00:00.000z", "+024-01-01T00:00:00.000Z"} {
		if got, ok := ParseTime(s); ok {
			t.Errorf("ParseTime(%q) = %v, want an error", s, got)
		}
	}
	if got, ok := ParseTime("2024-02-29T23:59:59.999Z"); !ok || got != time.Date(2024, 2, 29, 23, 59, 59, 999e6, time.UTC) {
		t.Errorf("leap day: %v %v", got, ok)
	}
}

func TestAppendTimeValueMatchesDoc(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	times := []time.Time{
		time.Unix(minUnix, 0), time.Unix(maxUnix, 999999999), time.Unix(minUnix-1, 0), time.Unix(maxUnix+1, 0),
		time.Unix(0, 0), time.Unix(-1, 999000000), time.Date(2000, 2, 29, 23, 59, 59, 0, time.UTC),
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for range 10000 {
		times = append(times, time.Unix(minUnix+r.Int64N(maxUnix-minUnix+1), r.Int64N(1e9)))
	}
	var dates DateCache
	var d Doc
	for _, tt := range times {
		d.Reset()
		d.Time("a", tt)
		// Years without four digits too ("-0005", "12000"): as Format
		// writes them, not an empty string.
		if got, want := string(AppendTimeValue(nil, tt, nil)), `"`+tt.UTC().Format(TimeLayout)+`"`; got != want {
			t.Fatalf("AppendTimeValue(%v) = %s, want %s", tt, got, want)
		}
		want := `{"a":` + string(AppendTimeValue(nil, tt, nil)) + `}`
		if got := string(d.AppendJSON(nil)); got != want {
			t.Fatalf("Doc.Time(%v) = %s, AppendTimeValue gives %s", tt, got, want)
		}
		if got := string(AppendTimeValue([]byte("x"), tt, &dates)); got != "x"+want[5:len(want)-1] {
			t.Fatalf("AppendTimeValue(%v) with a cache = %s, want x%s", tt, got, want[5:len(want)-1])
		}
	}
}

// TestTimeOutsideFourDigitYears: ParseTime takes years 0000 to 9999, and
// an offset can move such a time out of them in UTC; Doc.Time and
// TimeLayout still write the time.
func TestTimeOutsideFourDigitYears(t *testing.T) {
	for _, c := range []struct{ in, millis, seconds string }{
		{"0000-01-01T00:00:00+01:00", "-0001-12-31T23:00:00.000Z", "-0001-12-31T23:00:00Z"},
		{"9999-12-31T23:59:59.5-01:00", "10000-01-01T00:59:59.500Z", "10000-01-01T00:59:59Z"},
	} {
		tt, ok := ParseTime(c.in)
		if !ok {
			t.Fatalf("ParseTime(%q) failed", c.in)
		}
		var d Doc
		d.Time("a", tt)
		d.TimeLayout("b", tt, TimeLayoutSeconds)
		if got, want := string(d.AppendJSON(nil)), `{"a":"`+c.millis+`","b":"`+c.seconds+`"}`; got != want {
			t.Errorf("%s: %s, want %s", c.in, got, want)
		}
	}
}
