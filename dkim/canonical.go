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

	inline    int64     // bytes hashed in line, before the pipe started
	nextCheck int64     // inline when a processor was last found busy
	pipe      *hashPipe // hashes on another goroutine, once the body is large

	inlineOnly bool // never start the pipe
	forcePipe  bool // tests: start the pipe even with no processor idle

	on   int
	obuf [2048]byte
}

func (c *bodyCanon) emit(p []byte) {
	if c.pipe != nil {
		c.pipe.write(p)
		return
	}
	if c.inline >= c.nextCheck+pipeAfter && !c.inlineOnly {
		// The pipe only pays with a processor idle to run its goroutine
		// (see hashPipe). With none, look again after the next
		// pipeAfter bytes: a verifier's own key lookup, busy when the
		// body starts, ends soon after.
		if !c.forcePipe && !idleProcessor() {
			c.nextCheck = c.inline
			c.direct(p)
			return
		}
		c.pipe = newHashPipe(c.dst)
		c.pipe.write(p)
		return
	}
	c.direct(p)
}

func (c *bodyCanon) direct(p []byte) {
	c.inline += int64(len(p))
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
			// Runs are cut at pipeChunk so that a pipe's goroutine can
			// hash one while the next is scanned.
			q := p
			if len(q)-i > pipeChunk {
				q = p[:i+pipeChunk]
			}
			var j int
			if c.relaxed {
				j = scanRelaxed(q, i)
				if k, crlf := fixWSP(q, j); k > j {
					if j > i {
						c.out(p[i:j])
					}
					if crlf {
						c.outByte('\r')
						c.outByte('\n')
					} else {
						c.outByte(' ')
					}
					c.any = true
					i = k
					continue
				}
			} else {
				j = scanSimple(q, i)
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

// fixWSP handles the commonest spots where scanRelaxed stops, a run of
// WSP inside a line or at its end, when p holds what decides the run's
// fate: followed by an ordinary byte, the run becomes one SP (crlf false);
// followed by CRLF and an ordinary byte (so the line break is not one of
// the trailing empty lines), the run goes and the CRLF stays (crlf true).
// It returns the end of what it handled, an ordinary byte, where the scan
// may go on; or j when p[j] starts no such run, for the byte-level state
// machine to take.
func fixWSP(p []byte, j int) (k int, crlf bool) {
	k = j
	for k < len(p) && (p[k] == ' ' || p[k] == '\t') {
		k++
	}
	switch {
	case k == j || k == len(p):
		return j, false
	case !special(p[k]):
		return k, false
	case k+2 < len(p) && p[k] == '\r' && p[k+1] == '\n' && !special(p[k+2]):
		return k + 2, true
	}
	return j, false
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
// ends with one CRLF (simple: always; relaxed: unless it is empty). When it
// returns, the hashes have seen the whole body.
func (c *bodyCanon) Close() error {
	c.finish()
	c.wait()
	return nil
}

// finish is Close without waiting for the hashes, so that other work can
// overlap the end of the hashing; wait must follow before they are read.
func (c *bodyCanon) finish() {
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
}

// wait returns when every byte emitted has been hashed.
func (c *bodyCanon) wait() {
	if c.pipe != nil {
		c.pipe.wait()
		c.pipe = nil
	}
}

// special reports a byte that relaxed canonicalization may change.
func special(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// scanRelaxed returns the end of the run of p starting at i that relaxed
// body canonicalization (RFC 6376 §3.4.4) leaves unchanged, given that
// nothing is pending at i: no WSP, line break or CR waits for a decision,
// so the last byte emitted before i, if any, is not WSP.
//
// Inside a line, §3.4.4 changes only a tab, a run of two or more WSP bytes
// (both become one SP) and WSP at the end of the line (removed); a single
// SP between two other bytes stays. So the run holds ordinary bytes, lone
// CRs (ordinary bytes here), single SPs followed by such a byte, and CRLFs
// followed by an ordinary byte (the next line is not empty, so the CRLF is
// not part of trailing empty lines). It stops, and the byte-level state
// machine takes over, at:
//   - a tab or a lone LF (canonicalized as CRLF);
//   - an SP followed by WSP, CR or LF (a WSP run, or trailing WSP), or
//     ending p (its fate depends on the next write);
//   - a CRLF followed by WSP, a line break or the end of p;
//   - a CR at the end of p, whose meaning depends on the next write.
func scanRelaxed(p []byte, i int) int {
	n := len(p)
	for {
		i = nextCandidate(p, i)
		if i >= n {
			return n
		}
		switch p[i] {
		case ' ':
			if i+1 == n || special(p[i+1]) {
				return i
			}
		case '\t', '\n':
			return i
		case '\r':
			if i+1 == n {
				return i
			}
			if p[i+1] == '\n' {
				if i+2 == n || special(p[i+2]) {
					return i
				}
				i++ // a CRLF followed by an ordinary byte
			}
		}
		// An ordinary byte: a lone CR, another control byte, a single SP
		// or one of nextCandidate's false hits.
		i++
	}
}

const (
	one = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// nextCandidate returns the position of the first byte of p at or after i
// that may need the attention of scanRelaxed, or len(p) if there is none:
// every byte below 0x0E (tab, LF, CR and rarer control bytes) and every
// byte up to 0x20 (SP and the others) that is followed by another such byte
// or ends p. That covers a double SP and an SP before a line break or a
// tab. It may return a few other bytes (rarely, an SP followed by "!"),
// which scanRelaxed passes over; it never skips a candidate. It passes over
// a CRLF followed by an ordinary byte itself, as scanRelaxed would.
//
// It reads 32 bytes at a time with SWAR masks: (w - k*one) &^ w & hi8 flags
// the bytes of w below k. Its lowest flag is exact and the higher ones may
// be false (a borrow), so only the first flag is used. Blocks with no byte
// up to 0x20 at all (base64 lines) cost one such mask per word.
func nextCandidate(p []byte, i int) int {
	const (
		k0e = 0x0e * one
		k21 = 0x21 * one
	)
	n := len(p)
outer:
	for i+32 < n {
		q := p[i : i+32]
		w0 := binary.LittleEndian.Uint64(q)
		w1 := binary.LittleEndian.Uint64(q[8:])
		w2 := binary.LittleEndian.Uint64(q[16:])
		w3 := binary.LittleEndian.Uint64(q[24:])
		t0, t1, t2, t3 := (w0-k21)&^w0&hi8, (w1-k21)&^w1&hi8, (w2-k21)&^w2&hi8, (w3-k21)&^w3&hi8
		if t0|t1|t2|t3 == 0 {
			i += 32 // no byte up to 0x20
			continue
		}
		// The first byte up to 0x20 (the lowest flag is exact). When it
		// starts a CRLF followed by an ordinary byte (the end of a base64
		// line), pass it here.
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
		// The exact search, in its own loop so that the quick one above
		// keeps its words in registers.
		for i+32 < n {
			q := p[i : i+33]
			w0 := binary.LittleEndian.Uint64(q)
			w1 := binary.LittleEndian.Uint64(q[8:])
			w2 := binary.LittleEndian.Uint64(q[16:])
			w3 := binary.LittleEndian.Uint64(q[24:])
			u0, u1, u2, u3 := (w0-k21)&^w0, (w1-k21)&^w1, (w2-k21)&^w2, (w3-k21)&^w3
			if (u0|u1|u2|u3)&hi8 == 0 {
				i += 32
				continue outer // back to the quick search
			}
			// The byte after the block, flagged (0x80) when up to 0x20.
			u4 := (uint64(q[32]) - 0x21) >> 56 & 0x80
			// Bytes below 0x0E, and bytes up to 0x20 followed by another.
			m0 := ((w0-k0e)&^w0 | u0&(u0>>8|u1<<56)) & hi8
			m1 := ((w1-k0e)&^w1 | u1&(u1>>8|u2<<56)) & hi8
			m2 := ((w2-k0e)&^w2 | u2&(u2>>8|u3<<56)) & hi8
			m3 := ((w3-k0e)&^w3 | u3&(u3>>8|u4<<56)) & hi8
			if m0|m1|m2|m3 == 0 {
				i += 32
				continue
			}
			j := i
			switch {
			case m0 != 0:
				j += bits.TrailingZeros64(m0) >> 3
			case m1 != 0:
				j += 8 + bits.TrailingZeros64(m1)>>3
			case m2 != 0:
				j += 16 + bits.TrailingZeros64(m2)>>3
			default:
				j += 24 + bits.TrailingZeros64(m3)>>3
			}
			// The end of a line followed by an ordinary byte, passed over
			// here as scanRelaxed would.
			if j+2 < n && p[j] == '\r' && p[j+1] == '\n' && !special(p[j+2]) {
				i = j + 2
				continue
			}
			return j
		}
	}
	for ; i < n; i++ {
		if b := p[i]; b < 0x0e || b <= 0x20 && (i+1 == n || p[i+1] <= 0x20) {
			return i
		}
	}
	return n
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
