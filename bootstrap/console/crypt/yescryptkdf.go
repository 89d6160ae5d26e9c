package crypt

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// The yescrypt KDF, as Alexander Peslyak specified it in yescrypt-ref.c
// (openwall/yescrypt) and libxcrypt computes it: scrypt's SMix over a
// memory V of N blocks of 128·r bytes, whose BlockMix in the RW flavour
// is pwxform (multiplications and lookups in 12 KiB of S-boxes the
// hashing itself writes), with SHA-256 steps before and after. The
// classic scrypt (flags 0) and WORM (flags 1) flavours are the same
// skeleton with scrypt's Salsa20/8 BlockMix; "$y$" can name them too.
// Only what crypt(3) reaches is here: no ROM, no hash upgrades.

// Flags of the yescrypt parameters (yescrypt.h); 0 is classic scrypt and
// 1 (WORM) scrypt with yescrypt's t and SHA-256 steps.
const (
	yescryptRW = 0x002
	// The RW flavour libxcrypt knows: 6 pwxform rounds, 4-way gather,
	// 2-way simple, 12 KiB of S-boxes ("j" in "$y$j9T$").
	yescryptRWDefaults = yescryptRW | 0x004 | 0x010 | 0x020 | 0x080
	// yescryptPrehash marks the first, cheaper pass that large costs
	// make over N/64 to turn the password into a 32-byte key.
	yescryptPrehash = 0x10000000
)

// The pwxform geometry of the default flavour: each of the three S-boxes
// is 256 pairs of 64-bit words, and a pwxform block is 4 lanes (gather)
// of 2 words (simple), 64 bytes, transformed in 6 rounds.
const (
	sboxPairs = 256
	// sboxInitBlocks is the 12 KiB of S-boxes in 128-byte blocks, made
	// by SMix1 with r=1.
	sboxInitBlocks = 3 * sboxPairs * 2 * 8 / 128
)

type yescryptParams struct {
	flags   uint32
	n       uint64
	r, p, t uint32
}

// yescryptKDF is the 32-byte yescrypt of password and salt.
func yescryptKDF(password, salt []byte, prm yescryptParams) ([]byte, error) {
	// From 128 KiB·r per thread on, yescrypt_kdf first hashes the
	// password with a 64th of N and hashes that 32-byte key instead.
	perThread := prm.n / uint64(prm.p)
	if prm.flags&yescryptRW != 0 && perThread >= 0x100 && perThread*uint64(prm.r) >= 0x20000 {
		pre := prm
		pre.flags |= yescryptPrehash
		pre.n >>= 6
		pre.t = 0
		key, err := yescryptBody(password, salt, pre)
		if err != nil {
			return nil, err
		}
		password = key
	}
	return yescryptBody(password, salt, prm)
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// yescryptBody is yescrypt_kdf_body for a 32-byte result.
func yescryptBody(password, salt []byte, prm yescryptParams) ([]byte, error) {
	r := int(prm.r)
	if prm.flags != 0 {
		key := "yescrypt-prehash"
		if prm.flags&yescryptPrehash == 0 {
			key = "yescrypt"
		}
		password = hmacSHA256([]byte(key), password)
	}
	b, err := pbkdf2.Key(sha256.New, string(password), salt, 1, 128*r*int(prm.p))
	if err != nil {
		return nil, err
	}
	// Beyond classic scrypt, the final PBKDF2 is keyed with the start of
	// B (in RW, then mixed with the end of B after the S-boxes), not
	// with the password.
	if prm.flags != 0 {
		password = append([]byte(nil), b[:32]...)
	}
	v := make([]uint64, prm.n*uint64(16*r))
	if prm.flags&yescryptRW != 0 {
		smix(b, r, prm.n, prm.p, prm.t, prm.flags, v, password)
	} else {
		for i := range int(prm.p) {
			smix(b[128*r*i:128*r*(i+1)], r, prm.n, 1, prm.t, prm.flags, v, nil)
		}
	}
	dk, err := pbkdf2.Key(sha256.New, string(password), b, 1, 32)
	if err != nil {
		return nil, err
	}
	// The SCRAM steps (RFC 5802): the hash is the StoredKey, the SHA-256
	// of the ClientKey, so that a client could do the work above.
	if prm.flags != 0 && prm.flags&yescryptPrehash == 0 {
		sum := sha256.Sum256(hmacSHA256(dk, []byte("Client Key")))
		dk = sum[:]
	}
	return dk, nil
}

// smix runs SMix over B's p blocks of 128·r bytes with V of n blocks.
// In RW, pw (32 bytes) is replaced by its HMAC keyed with the end of the
// first block once that block has made its S-boxes.
func smix(b []byte, r int, n uint64, p, t, flags uint32, v []uint64, pw []byte) {
	rw := flags&yescryptRW != 0
	s := uint64(16 * r) // words of a block
	chunk := n / uint64(p)
	loopAll, loopRW := smixLoops(chunk, t, rw, p)
	chunk &^= 1
	x, y := make([]uint64, s), make([]uint64, s)
	mixers := make([]mixer, p)
	for i := range mixers {
		mixers[i].y = y // one block at a time
	}
	var start uint64
	for i := range uint64(p) {
		np := chunk
		if i == uint64(p)-1 {
			np = n - start
		}
		bp := b[uint64(128*r)*i : uint64(128*r)*(i+1)]
		vp := v[start*s : (start+np)*s]
		m := &mixers[i]
		if rw {
			// The S-boxes are the V of a Salsa20/8 SMix1 with r=1 over
			// the block's first 128 bytes.
			sb := make([]uint64, sboxInitBlocks*16)
			x1 := make([]uint64, 16)
			load(x1, bp[:128])
			smix1(x1, sboxInitBlocks, false, sb, m)
			store(bp[:128], x1)
			m.sbox = newSbox(sb)
			if i == 0 {
				copy(pw, hmacSHA256(bp[len(bp)-64:], pw))
			}
		}
		load(x, bp)
		smix1(x, np, rw, vp, m)
		smix2(x, p2floor(np), loopRW, rw, vp, m)
		store(bp, x)
		start += chunk
	}
	for i := range uint64(p) {
		bp := b[uint64(128*r)*i : uint64(128*r)*(i+1)]
		load(x, bp)
		smix2(x, n, loopAll-loopRW, false, v, &mixers[i])
		store(bp, x)
	}
}

// smixLoops is how many times SMix2 reads V for each block, all in all
// and, in RW, in the pass that also writes it; both even. t adds time
// without memory.
func smixLoops(chunk uint64, t uint32, rw bool, p uint32) (all, rwLoops uint64) {
	all = chunk
	switch {
	case rw && t <= 1:
		if t == 1 {
			all *= 2
		}
		all = (all + 2) / 3
	case rw:
		all *= uint64(t - 1)
	case t == 1:
		all += (all + 1) / 2
	case t > 1:
		all *= uint64(t)
	}
	if rw {
		rwLoops = all / uint64(p)
	}
	return (all + 1) &^ 1, (rwLoops + 1) &^ 1
}

// smix1 is SMix's first loop: V_i is the i-th state of x. In RW each
// state also mixes in an earlier one, chosen by the state.
func smix1(x []uint64, n uint64, rw bool, v []uint64, m *mixer) {
	s := uint64(len(x))
	for i := range n {
		copy(v[i*s:(i+1)*s], x)
		if rw && i > 1 {
			j := wrap(integerify(x), i)
			xorBlock(x, v[j*s:(j+1)*s])
		}
		m.blockMix(x)
	}
}

// smix2 is SMix's second loop: loops reads of V at places the state
// chooses; in RW each read block is overwritten with the new state.
func smix2(x []uint64, n, loops uint64, rw bool, v []uint64, m *mixer) {
	s := uint64(len(x))
	for range loops {
		j := integerify(x) & (n - 1)
		vj := v[j*s : (j+1)*s]
		xorBlock(x, vj)
		if rw {
			copy(vj, x)
		}
		m.blockMix(x)
	}
}

func xorBlock(dst, src []uint64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// integerify is the first 64 bits of the last 64-byte sub-block: words 0
// and 1, which the SIMD order puts at 0 and 13.
func integerify(x []uint64) uint64 {
	last := x[len(x)-8:]
	return last[0]&0xffffffff | last[6]&^0xffffffff
}

// p2floor is the largest power of 2 not above x (x > 0).
func p2floor(x uint64) uint64 {
	return 1 << (bits.Len64(x) - 1)
}

// wrap maps x into [i-p2floor(i), i): SMix1 mixes in one of the latest
// power-of-2 blocks it has written.
func wrap(x, i uint64) uint64 {
	n := p2floor(i)
	return x&(n-1) + (i - n)
}

// The words of a 64-byte Salsa20 block are held in the order SIMD code
// uses: word i holds the block's word 5i mod 16. yescrypt defines
// integerify and pwxform on that order, so the blocks stay in it, as
// pairs of 32-bit words in 64-bit ones (pwxform's unit).
var simdOrder = [16]int{0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11}

// load reads little-endian bytes into blocks in SIMD order.
func load(dst []uint64, src []byte) {
	for k := 0; k < len(dst); k += 8 {
		sub := src[k*8 : k*8+64]
		for m := range 8 {
			lo := binary.LittleEndian.Uint32(sub[4*simdOrder[2*m]:])
			hi := binary.LittleEndian.Uint32(sub[4*simdOrder[2*m+1]:])
			dst[k+m] = uint64(lo) | uint64(hi)<<32
		}
	}
}

// store is the inverse of load.
func store(dst []byte, src []uint64) {
	for k := 0; k < len(src); k += 8 {
		sub := dst[k*8 : k*8+64]
		for m := range 8 {
			binary.LittleEndian.PutUint32(sub[4*simdOrder[2*m]:], uint32(src[k+m]))
			binary.LittleEndian.PutUint32(sub[4*simdOrder[2*m+1]:], uint32(src[k+m]>>32))
		}
	}
}

// mixer is a BlockMix: pwxform's when it has S-boxes, else scrypt's
// Salsa20/8.
type mixer struct {
	sbox *sbox
	y    []uint64 // Salsa20/8 BlockMix's scratch
}

func (m *mixer) blockMix(b []uint64) {
	if m.sbox != nil {
		m.sbox.blockMix(b)
		return
	}
	blockMixSalsa8(b, m.y)
}

// blockMixSalsa8 is scrypt's BlockMix: each 64-byte sub-block is the
// Salsa20/8 of itself xor the previous result; the results are then
// reordered, even ones first.
func blockMixSalsa8(b, y []uint64) {
	n := len(b) / 8
	x := *(*[8]uint64)(b[len(b)-8:])
	for i := range n {
		for k := range x {
			x[k] ^= b[i*8+k]
		}
		salsa20(&x, 4)
		copy(y[i*8:], x[:])
	}
	for i := range n / 2 {
		copy(b[i*8:i*8+8], y[2*i*8:])
		copy(b[(i+n/2)*8:(i+n/2)*8+8], y[(2*i+1)*8:])
	}
}

// sbox is pwxform's state: S0 and S1 are read, S2 written at w; after
// each block they rotate. Each is 256 pairs of words.
type sbox struct {
	s0, s1, s2 *[2 * sboxPairs]uint64
	w          int // next word of S2
}

func newSbox(mem []uint64) *sbox {
	part := func(k int) *[2 * sboxPairs]uint64 {
		return (*[2 * sboxPairs]uint64)(mem[k*2*sboxPairs : (k+1)*2*sboxPairs])
	}
	return &sbox{s2: part(0), s1: part(1), s0: part(2)}
}

// blockMix is BlockMix_pwxform: each 64-byte sub-block is the pwxform of
// itself xor the previous result, and the last one then goes through
// Salsa20/2.
func (sb *sbox) blockMix(b []uint64) {
	x := *(*[8]uint64)(b[len(b)-8:])
	for i := 0; i < len(b); i += 8 {
		sub := (*[8]uint64)(b[i : i+8])
		for k := range x {
			x[k] ^= sub[k]
		}
		sb.pwxform(&x)
		*sub = x
	}
	salsa20((*[8]uint64)(b[len(b)-8:]), 1)
}

// pwxform transforms a 64-byte block: six rounds of pwxLane on each of
// its 4 lanes; the middle four rounds' results are written to S2.
func (sb *sbox) pwxform(x *[8]uint64) {
	s0, s1 := sb.s0, sb.s1
	// The middle rounds write 32 words, from w, a multiple of 32.
	out := (*[32]uint64)(sb.s2[sb.w : sb.w+32])
	x0, x1, x2, x3, x4, x5, x6, x7 := x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
	x0, x1 = pwxLane(x0, x1, s0, s1)
	x2, x3 = pwxLane(x2, x3, s0, s1)
	x4, x5 = pwxLane(x4, x5, s0, s1)
	x6, x7 = pwxLane(x6, x7, s0, s1)
	for k := 0; k < len(out); k += 8 {
		x0, x1 = pwxLane(x0, x1, s0, s1)
		x2, x3 = pwxLane(x2, x3, s0, s1)
		x4, x5 = pwxLane(x4, x5, s0, s1)
		x6, x7 = pwxLane(x6, x7, s0, s1)
		o := (*[8]uint64)(out[k : k+8])
		o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = x0, x1, x2, x3, x4, x5, x6, x7
	}
	x0, x1 = pwxLane(x0, x1, s0, s1)
	x2, x3 = pwxLane(x2, x3, s0, s1)
	x4, x5 = pwxLane(x4, x5, s0, s1)
	x6, x7 = pwxLane(x6, x7, s0, s1)
	x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7] = x0, x1, x2, x3, x4, x5, x6, x7
	sb.s0, sb.s1, sb.s2 = sb.s2, s0, s1
	sb.w = (sb.w + len(out)) % (2 * sboxPairs)
}

// pwxLane is one round of pwxform on a lane of two words: each becomes
// hi·lo + S0[p0] xor S1[p1], the pairs p0 and p1 chosen by bits 4-11 of
// each half of the first word.
func pwxLane(a, c uint64, s0, s1 *[2 * sboxPairs]uint64) (uint64, uint64) {
	p0 := a >> 3 & 0x1fe
	p1 := a >> 35 & 0x1fe
	a = ((a>>32)*(a&0xffffffff) + s0[p0]) ^ s1[p1]
	c = ((c>>32)*(c&0xffffffff) + s0[p0|1]) ^ s1[p1|1]
	return a, c
}

// salsa20 is the Salsa20 core with 2·doubleRounds rounds on a block in
// SIMD order, added to its input.
func salsa20(b *[8]uint64, doubleRounds int) {
	j0, j5 := uint32(b[0]), uint32(b[0]>>32)
	j10, j15 := uint32(b[1]), uint32(b[1]>>32)
	j4, j9 := uint32(b[2]), uint32(b[2]>>32)
	j14, j3 := uint32(b[3]), uint32(b[3]>>32)
	j8, j13 := uint32(b[4]), uint32(b[4]>>32)
	j2, j7 := uint32(b[5]), uint32(b[5]>>32)
	j12, j1 := uint32(b[6]), uint32(b[6]>>32)
	j6, j11 := uint32(b[7]), uint32(b[7]>>32)
	x0, x1, x2, x3, x4, x5, x6, x7 := j0, j1, j2, j3, j4, j5, j6, j7
	x8, x9, x10, x11, x12, x13, x14, x15 := j8, j9, j10, j11, j12, j13, j14, j15
	rl := bits.RotateLeft32
	for range doubleRounds {
		// Columns.
		x4 ^= rl(x0+x12, 7)
		x8 ^= rl(x4+x0, 9)
		x12 ^= rl(x8+x4, 13)
		x0 ^= rl(x12+x8, 18)
		x9 ^= rl(x5+x1, 7)
		x13 ^= rl(x9+x5, 9)
		x1 ^= rl(x13+x9, 13)
		x5 ^= rl(x1+x13, 18)
		x14 ^= rl(x10+x6, 7)
		x2 ^= rl(x14+x10, 9)
		x6 ^= rl(x2+x14, 13)
		x10 ^= rl(x6+x2, 18)
		x3 ^= rl(x15+x11, 7)
		x7 ^= rl(x3+x15, 9)
		x11 ^= rl(x7+x3, 13)
		x15 ^= rl(x11+x7, 18)
		// Rows.
		x1 ^= rl(x0+x3, 7)
		x2 ^= rl(x1+x0, 9)
		x3 ^= rl(x2+x1, 13)
		x0 ^= rl(x3+x2, 18)
		x6 ^= rl(x5+x4, 7)
		x7 ^= rl(x6+x5, 9)
		x4 ^= rl(x7+x6, 13)
		x5 ^= rl(x4+x7, 18)
		x11 ^= rl(x10+x9, 7)
		x8 ^= rl(x11+x10, 9)
		x9 ^= rl(x8+x11, 13)
		x10 ^= rl(x9+x8, 18)
		x12 ^= rl(x15+x14, 7)
		x13 ^= rl(x12+x15, 9)
		x14 ^= rl(x13+x12, 13)
		x15 ^= rl(x14+x13, 18)
	}
	pair := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	b[0] = pair(x0+j0, x5+j5)
	b[1] = pair(x10+j10, x15+j15)
	b[2] = pair(x4+j4, x9+j9)
	b[3] = pair(x14+j14, x3+j3)
	b[4] = pair(x8+j8, x13+j13)
	b[5] = pair(x2+j2, x7+j7)
	b[6] = pair(x12+j12, x1+j1)
	b[7] = pair(x6+j6, x11+j11)
}
