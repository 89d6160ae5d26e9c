package crypt

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt, as Ulrich Drepper specified it ("Unix crypt using SHA-256
// and SHA-512", 2007) and glibc and libxcrypt implement it: "$6$",
// optionally "rounds=N$", a salt of up to 16 characters, "$", and the
// digest in crypt's own base64.

const (
	roundsDefault = 5000
	roundsMin     = 1000
	roundsMax     = 999999999
	saltMax       = 16
)

var errBadHash = errors.New("malformed SHA-crypt hash")

func sha512Crypt(password, setting string) (string, error) {
	return shaCrypt(sha512.New, "$6$", sha512Order, password, setting)
}

func sha256Crypt(password, setting string) (string, error) {
	return shaCrypt(sha256.New, "$5$", sha256Order, password, setting)
}

// The order in which digest bytes are taken, three at a time, into four
// base64 characters; the last group has fewer.
var (
	sha512Order = []int{
		0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48,
		28, 49, 7, 50, 8, 29, 9, 30, 51, 31, 52, 10, 53, 11, 32, 12, 33, 54, 34, 55, 13,
		56, 14, 35, 15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19, 62, 20, 41,
		63,
	}
	sha256Order = []int{
		0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14, 15, 25, 5, 6, 16, 26,
		27, 7, 17, 18, 28, 8, 9, 19, 29,
		31, 30,
	}
)

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func shaCrypt(newHash func() hash.Hash, prefix string, order []int, password, setting string) (string, error) {
	rest, ok := strings.CutPrefix(setting, prefix)
	if !ok {
		return "", errBadHash
	}
	rounds, custom := roundsDefault, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, ok := strings.Cut(r, "$")
		v, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil || v < roundsMin || v > roundsMax {
			return "", fmt.Errorf("%w: rounds %q (from %d to %d)", errBadHash, n, roundsMin, roundsMax)
		}
		rounds, custom, rest = int(v), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > saltMax {
		salt = salt[:saltMax]
	}
	p, s := []byte(password), []byte(salt)

	h := newHash()
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)
	size := len(b)

	h.Reset()
	h.Write(p)
	h.Write(s)
	for n := len(p); n > 0; n -= size {
		h.Write(b[:min(n, size)])
	}
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	pSeq := repeat(h.Sum(nil), len(p))

	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sSeq := repeat(h.Sum(nil), len(s))

	c := a
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sSeq)
		}
		if i%7 != 0 {
			h.Write(pSeq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString(prefix)
	if custom {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.WriteString(salt)
	out.WriteByte('$')
	for i := 0; i < len(order); i += 3 {
		var w uint32
		n := 4
		switch len(order) - i {
		case 1:
			w, n = uint32(c[order[i]]), 2
		case 2:
			w, n = uint32(c[order[i]])<<8|uint32(c[order[i+1]]), 3
		default:
			w = uint32(c[order[i]])<<16 | uint32(c[order[i+1]])<<8 | uint32(c[order[i+2]])
		}
		for range n {
			out.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	return out.String(), nil
}

// repeat is digest repeated, then cut, to n bytes.
func repeat(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, digest[:min(len(digest), n-len(out))]...)
	}
	return out
}
