package dkim

import (
	"bytes"
	"encoding/binary"
	"hash"
	"math/bits"
)

// bodyHash receives canonical body bytes: a hash, with an optional length
// limit for the l= tag (RFC 6376 §3.4.5).
type bodyHash struct {
	h     hash.Hash
	limit int64 // bytes to hash; -1 for all
	n     int64 // canonical body bytes seen, including those past limit
}

func (b *bodyHash) write(p []byte) {
	if b.limit >= 0 {
		if rest := b.limit - b.n; rest < int64(len(p)) {
			if rest > 0 {
				b.h.Write(p[:rest])
			}
			b.n += int64(len(p))
			return
		}
	}
	b.n += int64(len(p))
	b.h.Write(p)
}

// bodyCanon is a single-pass body canonicalizer (RFC 6376 §3.4.3 simple,
// §3.4.4 relaxed) over a stream of writes, with a fixed output buffer.
//
// Line breaks are CRLF, or a lone LF (as if the CR had been lost on the
// way: it is canonicalized as CRLF). A CR not followed by LF is an ordinary
// byte. Runs of bytes that canonicalization leaves unchanged go to the hash
// straight from the caller's slice; the output buffer only gathers the
// bytes canonicalization rewrites.
type bodyCanon struct {
	relaxed bool
	dst     []*bodyHash

	crlfs int  // line breaks seen and not yet emitted (maybe trailing)
	cr    bool // the last byte was a CR whose meaning is not known yet
	wsp   bool // relaxed: a WSP run seen and not yet emitted
	any   bool // relaxed: some byte was emitted (the body is not empty)

	on   int
	obuf [2048]byte
}

func (c *bodyCanon) emit(p []byte) {
	for _, d := range c.dst {
		d.write(p)
	}
}

func (c *bodyCanon) flush() {
	if c.on > 0 {
		c.emit(c.obuf[:c.on])
		c.on = 0
	}
}

// out emits p after what is buffered, copying short runs so the hash sees
// few small writes.
func (c *bodyCanon) out(p []byte) {
	if len(p) < 512 {
		if c.on+len(p) > len(c.obuf) {
			c.flush()
		}
		c.on += copy(c.obuf[c.on:], p)
		return
	}
	c.flush()
	c.emit(p)
}

func (c *bodyCanon) outByte(b byte) {
	if c.on == len(c.obuf) {
		c.flush()
	}
	c.obuf[c.on] = b
	c.on++
}

func (c *bodyCanon) breaks() {
	for ; c.crlfs > 0; c.crlfs-- {
		if c.on+2 > len(c.obuf) {
			c.flush()
		}
		c.obuf[c.on] = '\r'
		c.obuf[c.on+1] = '\n'
		c.on += 2
	}
}

// clean reports whether no decision is pending, so input can pass through.
func (c *bodyCanon) clean() bool { return c.crlfs == 0 && !c.cr && !c.wsp }

// Write canonicalizes p. It never fails.
func (c *bodyCanon) Write(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		if c.clean() {
			var j int
			if c.relaxed {
				j = scanRelaxed(p, i)
			} else {
				j = scanSimple(p, i)
			}
			if j > i {
				c.out(p[i:j])
				c.any = true
				i = j
				continue
			}
		}
		c.step(p[i])
		i++
	}
	return len(p), nil
}

// step processes one byte the slow way.
func (c *bodyCanon) step(b byte) {
	if c.cr {
		c.cr = false
		if b == '\n' {
			c.wsp = false // trailing WSP of the line is dropped (relaxed)
			c.crlfs++
			return
		}
		c.content('\r') // a lone CR is an ordinary byte
	}
	switch b {
	case '\r':
		c.cr = true
	case '\n':
		c.wsp = false
		c.crlfs++
	case ' ', '\t':
		if c.relaxed {
			c.wsp = true
			return
		}
		c.content(b)
	default:
		c.content(b)
	}
}

// content emits an ordinary byte after the pending line breaks and WSP.
func (c *bodyCanon) content(b byte) {
	c.breaks()
	if c.wsp {
		c.outByte(' ')
		c.wsp = false
	}
	c.outByte(b)
	c.any = true
}

// Close ends the body: trailing empty lines are dropped, and the body
// ends with one CRLF (simple: always; relaxed: unless it is empty).
func (c *bodyCanon) Close() error {
	if c.cr {
		c.cr = false
		c.content('\r')
	}
	c.wsp = false
	c.crlfs = 0
	if !c.relaxed || c.any {
		c.outByte('\r')
		c.outByte('\n')
	}
	c.flush()
	return nil
}

const (
	lo7 = 0x7f7f7f7f7f7f7f7f
	hi8 = 0x8080808080808080
	one = 0x0101010101010101
)

// specialTop maps a byte to the top bit of a word when it is special.
var specialTop = [256]uint64{' ': 1 << 63, '\t': 1 << 63, '\r': 1 << 63, '\n': 1 << 63}

// special reports a byte that relaxed canonicalization may change.
func special(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// scanRelaxed returns the end of the run of p starting at i that relaxed
// canonicalization leaves unchanged when nothing is pending: ordinary
// bytes, single SPs followed by an ordinary byte, lone CRs, and CRLFs
// followed by an ordinary byte. It reads 32 bytes at a time while no byte
// is below 0x21, then eight at a time with exact byte masks; line breaks
// and other rare bytes are looked at one by one.
func scanRelaxed(p []byte, i int) int {
	const k21 = 0x2121212121212121
	n := len(p)
	for {
		for i+32 <= n {
			q := p[i : i+32]
			w0 := binary.LittleEndian.Uint64(q)
			w1 := binary.LittleEndian.Uint64(q[8:])
			w2 := binary.LittleEndian.Uint64(q[16:])
			w3 := binary.LittleEndian.Uint64(q[24:])
			u0, u1, u2, u3 := (w0-k21)&^w0, (w1-k21)&^w1, (w2-k21)&^w2, (w3-k21)&^w3
			if (u0|u1|u2|u3)&hi8 == 0 {
				i += 32
				continue
			}
			t0, t1, t2, t3 := u0&hi8, u1&hi8, u2&hi8, u3&hi8
			// The lowest flagged byte of a word is exact: j is the first
			// byte below 0x21. A CRLF followed by an ordinary byte (the
			// end of a base64 line) passes here without the word loop.
			j := i
			switch {
			case t0 != 0:
				j += bits.TrailingZeros64(t0) >> 3
			case t1 != 0:
				j += 8 + bits.TrailingZeros64(t1)>>3
			case t2 != 0:
				j += 16 + bits.TrailingZeros64(t2)>>3
			default:
				j += 24 + bits.TrailingZeros64(t3)>>3
			}
			if j+2 < n && p[j] == '\r' && p[j+1] == '\n' && !special(p[j+2]) {
				i = j + 2
				continue
			}
			i = j
			break
		}
		for i+9 <= n {
			w := binary.LittleEndian.Uint64(p[i:])
			// Exact masks: bytes below 0x21, SP bytes, the others.
			lt := ^(((w & lo7) + 0x5f5f5f5f5f5f5f5f) | w) & hi8
			x := w ^ (' ' * one)
			sp := ^(((x & lo7) + lo7) | x | lo7)
			other := lt &^ sp
			// Where the slow path must look: a byte other than SP, an SP
			// followed by SP or by another such byte, in this word or
			// (for its last byte) in the next one.
			bad := other | sp&(sp>>8) | sp&(other>>8) | sp&specialTop[p[i+8]]
			if bad != 0 {
				i += bits.TrailingZeros64(bad) >> 3
				break
			}
			i += 8
		}
		for i < n && p[i] > 0x20 {
			i++
		}
		if i >= n {
			return n
		}
		switch p[i] {
		case ' ':
			if i+1 < n && !special(p[i+1]) {
				i++
				continue
			}
		case '\r':
			if i+1 < n && p[i+1] != '\n' {
				i++ // lone CR
				continue
			}
			if i+2 < n && p[i+1] == '\n' && !special(p[i+2]) {
				i += 2
				continue
			}
		case '\t', '\n':
		default:
			i++ // another control byte: ordinary
			continue
		}
		return i
	}
}

// scanSimple is scanRelaxed for simple canonicalization, where only line
// breaks matter: a CRLF followed by an ordinary byte passes, a lone LF or
// a run of line breaks (maybe trailing) stops the run, and so does a CR
// at the end of p.
func scanSimple(p []byte, i int) int {
	n := len(p)
	for {
		k := bytes.IndexByte(p[i:], '\n')
		if k < 0 {
			if n > i && p[n-1] == '\r' {
				return n - 1
			}
			return n
		}
		j := i + k
		if j == i || p[j-1] != '\r' {
			return j // lone LF
		}
		if j+1 < n && p[j+1] != '\r' && p[j+1] != '\n' {
			i = j + 1
			continue
		}
		return j - 1
	}
}
