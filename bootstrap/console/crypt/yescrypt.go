package crypt

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// yescrypt hashes as libxcrypt writes them (`mkpasswd -m yescrypt`, the
// default of Debian 12): "$y$", the parameters, "$", the salt, "$", and
// the 32-byte hash in 43 characters. The parameters are numbers in
// yescrypt's variable-length base 64: the flavour, log2 N, r, then
// optionally a bit set of further ones (p, t) and those. "$y$j9T$" is the
// RW flavour, N=4096, r=32: 16 MiB.
//
// The console checks a login with the memory and time the hash asks
// for, so a hash could ask for more than a machine should spend on one
// (or than it has). Hashes beyond these limits are refused, though
// libxcrypt would compute them.
const (
	// yescryptMaxMemory bounds V, N·r·128 bytes, yescrypt's memory
	// cost: mkpasswd's costliest setting, -R 11, is exactly 1 GiB.
	yescryptMaxMemory = 1 << 30
	// yescryptMaxThreadMemory bounds the rest: (r·128 + 12 KiB)·p bytes
	// of blocks and S-boxes, 16 KiB at -R 11.
	yescryptMaxThreadMemory = 64 << 20
	// yescryptMaxWork bounds the bytes that go through BlockMix, four
	// passes over the largest V: -R 11 mixes 1.33 GiB, with t=3 3 GiB.
	yescryptMaxWork = 4 << 30
)

var (
	errBadYescrypt  = errors.New("malformed yescrypt hash")
	errYescryptCost = errors.New("yescrypt hash too costly to check")
)

// yescryptHash is a parsed "$y$" hash.
type yescryptHash struct {
	params yescryptParams
	salt   []byte
	sum    []byte
}

func verifyYescrypt(hash, password string) error {
	h, err := parseYescrypt(hash)
	if err != nil {
		return err
	}
	sum, err := yescryptKDF([]byte(password), h.salt, h.params)
	if err != nil {
		return fmt.Errorf("yescrypt: %w", err)
	}
	if subtle.ConstantTimeCompare(sum, h.sum) != 1 {
		return ErrMismatch
	}
	return nil
}

// parseYescrypt reads a "$y$" hash, refusing what libxcrypt refuses
// (yescrypt_r and yescrypt_kdf) and what is beyond this package's
// limits.
func parseYescrypt(hash string) (*yescryptHash, error) {
	rest, ok := strings.CutPrefix(hash, "$y$")
	if !ok {
		return nil, errBadYescrypt
	}
	bad := func(what string) (*yescryptHash, error) {
		return nil, fmt.Errorf("%w: %s", errBadYescrypt, what)
	}
	d := paramDecoder{s: rest}
	flavor := d.next(0)
	nLog2 := d.next(1)
	r := d.next(1)
	prm := yescryptParams{r: r, p: 1}
	switch {
	case flavor < yescryptRW:
		prm.flags = flavor
	case flavor == yescryptRW+yescryptRWDefaults>>2:
		prm.flags = yescryptRWDefaults
	case !d.bad:
		return bad(fmt.Sprintf("flavour %d (libxcrypt has 0, 1 and %d)", flavor, yescryptRW+yescryptRWDefaults>>2))
	}
	if !d.bad && !d.done() {
		have := d.next(1)
		if have&1 != 0 {
			prm.p = d.next(2)
		}
		if have&2 != 0 {
			prm.t = d.next(1)
		}
		// g (hash upgrades) and NROM (a ROM) are parameters libxcrypt's
		// crypt(3) refuses too.
		if !d.bad && have&(4|8) != 0 {
			return bad("hash upgrades or a ROM, which crypt(3) does not use")
		}
	}
	if d.bad || !d.done() {
		return bad("parameters (flavour, log2 N, r and optional ones in crypt's base 64)")
	}
	rest = d.s[1:]
	cut := strings.LastIndexByte(rest, '$')
	if cut < 0 {
		return bad("no hash after the salt")
	}
	salt, ok := decode64(rest[:cut], 64)
	if !ok {
		return bad("salt")
	}
	sum, ok := decode64(rest[cut+1:], 32)
	if !ok || len(sum) != 32 {
		return bad("hash (43 characters of ./0-9A-Za-z)")
	}

	// yescrypt_kdf_body's checks, with libxcrypt's N from 4 to 2^32-1.
	if nLog2 < 2 || nLog2 > 31 {
		return bad(fmt.Sprintf("N=2^%d (N must be from 2^2 to 2^31)", nLog2))
	}
	prm.n = 1 << nLog2
	if uint64(prm.r)*uint64(prm.p) >= 1<<30 {
		return bad(fmt.Sprintf("r=%d, p=%d (r·p must be below 2^30)", prm.r, prm.p))
	}
	if prm.flags == 0 && prm.t != 0 {
		return bad("t with classic scrypt")
	}
	if prm.flags&yescryptRW != 0 && prm.n/uint64(prm.p) <= 3 {
		return bad(fmt.Sprintf("N=%d, p=%d (N/p must be above 3)", prm.n, prm.p))
	}
	if err := prm.checkCost(); err != nil {
		return nil, err
	}
	return &yescryptHash{params: prm, salt: salt, sum: sum}, nil
}

// checkCost refuses parameters beyond the limits, before any arithmetic
// on them can overflow: r is below 2^30 and N at most 2^31.
func (prm yescryptParams) checkCost() error {
	block := 128 * uint64(prm.r)
	if prm.n > yescryptMaxMemory/block {
		return fmt.Errorf("%w: N=%d, r=%d need %.0f MiB, more than the %d MiB the console spends on a login (mkpasswd -m yescrypt -R 11 at most)",
			errYescryptCost, prm.n, prm.r, float64(prm.n)*float64(block)/(1<<20), yescryptMaxMemory>>20)
	}
	rw := prm.flags&yescryptRW != 0
	perThread := block
	if rw {
		perThread += sboxInitBlocks * 128
	}
	if uint64(prm.p) > yescryptMaxThreadMemory/perThread {
		return fmt.Errorf("%w: r=%d, p=%d need %.0f MiB beside V, more than the %d MiB the console spends on a login (p=1 is usual)",
			errYescryptCost, prm.r, prm.p, float64(prm.p)*float64(perThread)/(1<<20), yescryptMaxThreadMemory>>20)
	}
	// Each of the p blocks goes through SMix2's loops; SMix1 fills V
	// once in RW, once per block otherwise. p is at most 2^19 here, loops
	// below 2^63 (N/p·t): the product needs 128 bits.
	loops, _ := smixLoops(prm.n/uint64(prm.p), prm.t, rw, prm.p)
	perBlock, once := loops, prm.n
	if !rw {
		perBlock, once = loops+prm.n, 0
	}
	hi, blocks := bits.Mul64(perBlock, uint64(prm.p))
	// once <= N <= yescryptMaxMemory/block: the subtraction stays
	// above 0.
	if hi != 0 || blocks > yescryptMaxWork/block-once {
		return fmt.Errorf("%w: N=%d, r=%d, p=%d, t=%d mix more than %d GiB, the most the console spends on a login",
			errYescryptCost, prm.n, prm.r, prm.p, prm.t, yescryptMaxWork>>30)
	}
	return nil
}

// paramDecoder reads yescrypt's variable-length numbers: a first
// character below 48 is the number itself; larger ones say how many
// characters follow (up to 5) and the high bits, the following ones
// give 6 bits each, most significant first. Each number has its own
// least value, which the encoding starts at.
type paramDecoder struct {
	s   string
	bad bool // a character is missing or not of the alphabet
}

func (d *paramDecoder) next(least uint32) uint32 {
	c := d.digit()
	v := least
	start, end, chars, shift := uint32(0), uint32(47), 1, 0
	for c > end {
		v += (end + 1 - start) << shift
		start = end + 1
		end = start + (62-end)/2
		chars++
		shift += 6
	}
	v += (c - start) << shift
	for ; chars > 1; chars-- {
		shift -= 6
		v += d.digit() << shift
	}
	return v
}

// digit takes the next character's value; 0 once the input is bad.
func (d *paramDecoder) digit() uint32 {
	if d.bad || d.s == "" {
		d.bad = true
		return 0
	}
	c, ok := atoi64(d.s[0])
	if !ok {
		d.bad = true
		return 0
	}
	d.s = d.s[1:]
	return c
}

// done reports whether the parameters end here, at the "$" before the
// salt.
func (d *paramDecoder) done() bool {
	return strings.HasPrefix(d.s, "$")
}

// atoi64 is the value of a character of crypt's base 64.
func atoi64(c byte) (uint32, bool) {
	i := strings.IndexByte(cryptAlphabet, c)
	if i < 0 {
		return 0, false
	}
	return uint32(i), true
}

// decode64 reads bytes in yescrypt's base 64, as strictly as libxcrypt:
// groups of up to 4 characters, least significant first, give up to 3
// bytes; a last group of 2 or 3 characters gives 1 or 2 bytes and its
// unused bits must be 0. More than limit bytes is an error.
func decode64(s string, limit int) ([]byte, bool) {
	var out []byte
	for len(s) > 0 {
		n := min(len(s), 4)
		if n == 1 {
			return nil, false
		}
		var v uint32
		for i := range n {
			c, ok := atoi64(s[i])
			if !ok {
				return nil, false
			}
			v |= c << (6 * i)
		}
		s = s[n:]
		nbytes := n * 6 / 8
		if v>>(8*nbytes) != 0 || len(out)+nbytes > limit {
			return nil, false
		}
		for range nbytes {
			out = append(out, byte(v))
			v >>= 8
		}
	}
	return out, true
}
