package relay

import "io"

// messageError is an error reading the message, as opposed to writing it
// to the server.
type messageError struct{ err error }

func (e *messageError) Error() string { return "reading the message: " + e.err.Error() }
func (e *messageError) Unwrap() error { return e.err }

// normalizer reads a message and gives it as SMTP wants it on the wire:
// every line ending CRLF (RFC 5321 §2.3.8: a bare LF or a bare CR ends a
// line too, and becomes CRLF), the last line ended even when the message
// was not, and, for DATA, dot-stuffed (§4.5.2: a line that starts with
// "." gets another in front). The message is never refused for its line
// endings. With BDAT (RFC 3030) there is no stuffing: the chunk sizes
// delimit the message.
//
// A CR followed by CR is a line ending of its own, so "a\r\r\nb" is the
// three lines "a", "" and "b".
//
// It is the one normalizer of the package: the client reads messages
// through it, and SigningSender signs and hands on what it gives, so that
// what was signed is what goes on the wire.
type normalizer struct {
	src   io.Reader
	stuff bool   // dot-stuff, for DATA
	in    []byte // read buffer
	out   []byte // normalized octets not yet read, in obuf
	obuf  []byte
	cr    bool  // the last octet read was a CR, its line ending not yet written
	bol   bool  // the output is at the beginning of a line
	eof   bool  // src is at its end and its end is written
	err   error // src's error other than io.EOF, as a *messageError
	n     int64 // octets given out
	nin   int64 // octets read from src
}

func newNormalizer(src io.Reader, stuff bool) *normalizer {
	z := &normalizer{}
	z.reset(src, stuff)
	return z
}

// reset makes z a normalizer of src, keeping its buffers: a connection
// keeps one for all its messages.
func (z *normalizer) reset(src io.Reader, stuff bool) {
	in, obuf := z.in, z.obuf
	if in == nil {
		in = make([]byte, 16<<10)
	}
	*z = normalizer{src: src, stuff: stuff, bol: true, in: in, obuf: obuf}
}

// Read gives normalized octets.
func (z *normalizer) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		if z.eof {
			return 0, io.EOF
		}
		z.fill()
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	z.n += int64(n)
	return n, nil
}

// changed reports, once the whole message has been read, whether what z
// gave differs from what it read. Every change adds octets (a CR or LF
// made CRLF, a final CRLF, a stuffed dot) and none removes any, so the
// counts differ exactly when the octets do.
func (z *normalizer) changed() bool { return z.n != z.nin }

// fill reads from src and normalizes what it read into out.
func (z *normalizer) fill() {
	n, err := z.src.Read(z.in)
	z.nin += int64(n)
	if z.obuf == nil {
		z.obuf = make([]byte, 0, 2*len(z.in)+4) // every octet may become two
	}
	out := z.obuf[:0]
	for _, c := range z.in[:n] {
		switch c {
		case '\r':
			if z.cr {
				out = append(out, '\r', '\n')
				z.bol = true
			}
			z.cr = true
		case '\n':
			out = append(out, '\r', '\n')
			z.cr, z.bol = false, true
		default:
			if z.cr {
				out = append(out, '\r', '\n')
				z.cr, z.bol = false, true
			}
			if z.bol && c == '.' && z.stuff {
				out = append(out, '.')
			}
			out = append(out, c)
			z.bol = false
		}
	}
	switch {
	case err == io.EOF:
		if z.cr || !z.bol {
			out = append(out, '\r', '\n')
			z.cr, z.bol = false, true
		}
		z.eof = true
	case err != nil:
		z.err = &messageError{err}
	}
	z.out = out
}
