package ecs

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// HashField returns the ECS file.hash field name for a hex digest of h's
// length: 32 md5, 40 sha1, 64 sha256, 96 sha384, 128 sha512. Any other
// length returns false. The characters are not checked, as Elastic does not
// check them either.
func HashField(h string) (field string, ok bool) {
	switch len(h) {
	case 32:
		return "md5", true
	case 40:
		return "sha1", true
	case 64:
		return "sha256", true
	case 96:
		return "sha384", true
	case 128:
		return "sha512", true
	}
	return "", false
}

// Confidence maps a 0–100 score to threat.indicator.confidence as Elastic's
// threat-intel pipelines do: v <= 0 or v > 100 → "None", 1 <= v < 30 →
// "Low", 30 <= v < 70 → "Medium", 70 <= v <= 100 → "High". A score with
// 0 < v < 1 falls between the buckets: it returns "" and the caller keeps
// the score itself as the confidence, as Elastic does. NaN returns "".
func Confidence(score float64) string {
	switch v := score; {
	case v <= 0 || v > 100:
		return "None"
	case v >= 1 && v < 30:
		return "Low"
	case v >= 30 && v < 70:
		return "Medium"
	case v >= 70 && v <= 100:
		return "High"
	}
	return ""
}

// DefaultExpiration is the IOC lifetime Elastic uses when the configured
// expiration duration has an unknown unit.
const DefaultExpiration = 90 * 24 * time.Hour

// ParseExpiration parses an IOC expiration duration as Elastic's
// ti_rapid7_threat_command pipeline does: the last character is the unit
// (d days, h hours, m minutes; not months) and everything before it must be
// an integer (a Java long: an optional sign and decimal digits). An unknown
// unit is not an error: it returns DefaultExpiration and fallback true,
// without looking at the number. A number that does not parse, an empty
// string, or a duration that does not fit a time.Duration is an error.
func ParseExpiration(s string) (d time.Duration, fallback bool, err error) {
	if s == "" {
		return 0, false, fmt.Errorf("empty expiration duration: want <integer>d, <integer>h or <integer>m, e.g. 90d")
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'd':
		unit = 24 * time.Hour
	case 'h':
		unit = time.Hour
	case 'm':
		unit = time.Minute
	default:
		return DefaultExpiration, true, nil
	}
	num := s[:len(s)-1]
	n, perr := strconv.ParseInt(num, 10, 64)
	if perr != nil || num == "" || hasUnderscore(num) {
		return 0, false, fmt.Errorf("invalid expiration duration %q: want <integer>d, <integer>h or <integer>m, e.g. 90d", s)
	}
	if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, false, fmt.Errorf("expiration duration %q is too large", s)
	}
	return time.Duration(n) * unit, false, nil
}

func hasUnderscore(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			return true
		}
	}
	return false
}

// ParseTime parses s as Elasticsearch's "ISO8601" date format does, for the
// forms the threat-intel APIs use: yyyy-MM-dd, optionally followed by
// 'T'HH:mm, :ss, a fraction of up to nine digits ('.' or ','), and a zone
// (Z, ±HH, ±HHmm or ±HH:mm). A missing zone means UTC. The result is in UTC.
func ParseTime(s string) (time.Time, bool) {
	if t, ok := parseTimeLayout(s); ok {
		return t, true
	}
	p := timeParser{s: s}
	year, ok := p.digits(4)
	if !ok || !p.byte('-') {
		return time.Time{}, false
	}
	month, ok := p.digits(2)
	if !ok || month < 1 || month > 12 || !p.byte('-') {
		return time.Time{}, false
	}
	day, ok := p.digits(2)
	if !ok || day < 1 || day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	var hour, minute, sec, nsec int
	if p.byte('T') {
		if hour, ok = p.digits(2); !ok || hour > 23 {
			return time.Time{}, false
		}
		if !p.byte(':') {
			return time.Time{}, false
		}
		if minute, ok = p.digits(2); !ok || minute > 59 {
			return time.Time{}, false
		}
		if p.byte(':') {
			if sec, ok = p.digits(2); !ok || sec > 59 {
				return time.Time{}, false
			}
			if p.byte('.') || p.byte(',') {
				n := 0
				scale := 100000000
				for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
					if n == 9 {
						return time.Time{}, false
					}
					nsec += int(p.s[p.i]-'0') * scale
					scale /= 10
					p.i++
					n++
				}
				if n == 0 {
					return time.Time{}, false
				}
			}
		}
	}
	offset := 0
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case 'Z':
			p.i++
		case '+', '-':
			sign := 1
			if p.s[p.i] == '-' {
				sign = -1
			}
			p.i++
			oh, ok := p.digits(2)
			if !ok || oh > 18 {
				return time.Time{}, false
			}
			om := 0
			if p.byte(':') {
				if om, ok = p.digits(2); !ok {
					return time.Time{}, false
				}
			} else if p.i < len(p.s) {
				if om, ok = p.digits(2); !ok {
					return time.Time{}, false
				}
			}
			if om > 59 {
				return time.Time{}, false
			}
			offset = sign * (oh*3600 + om*60)
		default:
			return time.Time{}, false
		}
	}
	if p.i != len(p.s) {
		return time.Time{}, false
	}
	// What time.Date(…, time.UTC).Add(-offset) gives, without its
	// normalization, which the checks above make needless.
	unix := daysSinceEpoch(year, month, day)*secondsPerDay + int64(hour*3600+minute*60+sec-offset)
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// parseTimeLayout parses s if it is in TimeLayout, the form of most dates,
// with fixed offsets instead of a scan.
func parseTimeLayout(s string) (time.Time, bool) {
	if len(s) != len(TimeLayout) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[23] != 'Z' {
		return time.Time{}, false
	}
	b := (*[len(TimeLayout)]byte)([]byte(s)) // constant offsets: no bounds checks
	// Each of these is above 99 if a byte is not a digit.
	century, year, month, day := num2(b, 0), num2(b, 2), num2(b, 5), num2(b, 8)
	hour, minute, sec := num2(b, 11), num2(b, 14), num2(b, 17)
	ms0, ms := uint(b[20]-'0'), num2(b, 21)
	if century > 99 || year > 99 || ms0 > 9 || ms > 99 || month < 1 || month > 12 || day < 1 ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	y := int(century*100 + year)
	if int(day) > daysIn(time.Month(month), y) {
		return time.Time{}, false
	}
	unix := daysSinceEpoch(y, int(month), int(day))*secondsPerDay + int64(hour*3600+minute*60+sec)
	return time.Unix(unix, int64(ms0*100+ms)*1e6).UTC(), true
}

// num2 returns the number written by the two digits at b[i:], or a number
// above 99 if they are not digits.
func num2(b *[len(TimeLayout)]byte, i int) uint {
	hi, lo := uint(b[i]-'0'), uint(b[i+1]-'0')
	if hi > 9 || lo > 9 {
		return 100
	}
	return hi*10 + lo
}

type timeParser struct {
	s string
	i int
}

func (p *timeParser) byte(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *timeParser) digits(n int) (int, bool) {
	if len(p.s)-p.i < n {
		return 0, false
	}
	v := 0
	for k := 0; k < n; k++ {
		c := p.s[p.i+k]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v, true
}

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}
