package sqlite

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
)

// sortKeys orders a merge batch as the live table does: by ds, then by
// key (as bytes.Compare), then by write order (i).
//
// Keys of one kind share long prefixes ("https://", "HKEY_CURRENT_USER\",
// "2001:db8:"), so that a comparison sort compares the same leading bytes
// over and over, reading both keys from the entry lists each time. A
// multikey quicksort (Bentley and Sedgewick) looks at the keys eight bytes
// at a time instead: it partitions them three ways by the word at depth d
// and goes on to d+8 only with the keys that share it. It sorted a batch
// of 65,536 generated indicators about a third faster than slices.SortFunc.
func sortKeys(keys []sortKey) {
	oneDS := true
	for i := 1; i < len(keys); i++ {
		if keys[i].ds != keys[0].ds {
			oneDS = false
			break
		}
	}
	if !oneDS {
		slices.SortFunc(keys, func(x, y sortKey) int { return cmp.Compare(x.ds, y.ds) })
	}
	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end].ds == keys[start].ds {
			end++
		}
		sortFrom(keys[start:end], 0, 2*bits.Len(uint(end-start)))
		start = end
	}
}

// sortFrom sorts keys, whose first d bytes are equal, by key from d, then
// by i. Past budget partitions that leave keys on both sides of the pivot
// (a bad run of pivots), it falls back to slices.SortFunc.
func sortFrom(keys []sortKey, d, budget int) {
	for len(keys) > 12 {
		if budget == 0 {
			slices.SortFunc(keys, func(x, y sortKey) int { return compareFrom(&x, &y, d) })
			return
		}
		budget--
		pw, pn := keyWord(&keys[len(keys)/2], d)
		lt, i, gt := 0, 0, len(keys)
		for i < gt {
			w, n := keyWord(&keys[i], d)
			switch {
			case w < pw || w == pw && n < pn:
				keys[lt], keys[i] = keys[i], keys[lt]
				lt++
				i++
			case w > pw || n > pn:
				gt--
				keys[gt], keys[i] = keys[i], keys[gt]
			default:
				i++
			}
		}
		sortFrom(keys[:lt], d, budget)
		sortFrom(keys[gt:], d, budget)
		keys = keys[lt:gt]
		if pn < 8 {
			// The same key, which ends in this word: by write order.
			slices.SortFunc(keys, func(x, y sortKey) int { return cmp.Compare(x.i, y.i) })
			return
		}
		d += 8
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && compareFrom(&keys[j], &keys[j-1], d) < 0; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// keyWord returns the eight bytes of k's key from d, big-endian and zero
// padded, and how many of them the key has: two keys equal before d
// compare (by bytes.Compare) as their words, then as those counts, and
// when both are 8, as what follows.
func keyWord(k *sortKey, d int) (uint64, int) {
	if d == 0 {
		return k.pre, min(len(k.key), 8)
	}
	switch r := len(k.key) - d; {
	case r >= 8:
		return binary.BigEndian.Uint64(k.key[d:]), 8
	case r <= 0:
		return 0, 0
	default:
		var b [8]byte
		copy(b[:], k.key[d:])
		return binary.BigEndian.Uint64(b[:]), r
	}
}

// compareFrom compares x and y, whose keys are equal before d, as
// sortKeys orders them.
func compareFrom(x, y *sortKey, d int) int {
	if c := bytes.Compare(x.key[min(d, len(x.key)):], y.key[min(d, len(y.key)):]); c != 0 {
		return c
	}
	return cmp.Compare(x.i, y.i)
}
