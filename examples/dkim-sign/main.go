// Command dkim-sign signs the message on standard input and writes the
// signed message to standard output.
//
//	dkim-sign -d DOMAIN -s SELECTOR -k KEYFILE [-d ... -s ... -k ...]
//	          [-c relaxed/relaxed] [-headers From:To:Subject] < message
//
// -k, -d and -s may repeat, in matching order, for several signatures made
// in one pass. KEYFILE is PEM (PKCS#1 or PKCS#8) or a base64 Ed25519 seed.
// -headers sets the h= list; without it the package default list is
// oversigned. The output is the DKIM-Signature fields, then the message,
// with every line ending in CRLF (RFC 5322 §2.1): LF line ends of the
// input are made CRLF, as the signatures read them.
//
// A message with no From field is refused (RFC 6376 §5.4: From must be
// signed), and so is an empty one.
//
// It follows the conventions of examples/README.md: -h prints every flag;
// the exit status is 0 when the message is signed, 1 when the message is
// refused or signing fails, and 2 on a usage error (a bad or missing flag,
// a key file that cannot be read or used); an error is one line naming the
// flag, the file or standard input.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/smarthost-go/smarthost/dkim"
	"github.com/smarthost-go/smarthost/examples/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := cli.New("dkim-sign", "dkim-sign -d DOMAIN -s SELECTOR -k KEYFILE [-d DOMAIN -s SELECTOR -k KEYFILE ...] "+
		"[-c relaxed/relaxed] [-headers From:To:Subject] < message", stdout, stderr)
	c.Doc = `Signs the message on standard input with one DKIM signature (RFC 6376,
RFC 8463) per -d, -s and -k, and writes the DKIM-Signature fields and then
the message to standard output, every line ending in CRLF.`
	c.Stdin = "the message to sign (RFC 5322; LF line ends are made CRLF). It must have a From field."
	c.Exit0 = "when the message is signed"
	c.Exit1 = "when it is refused (empty, no From field, a header line without a colon) or signing fails"
	var domains, selectors, keys list
	c.Flags.Var(&domains, "d", "signing `DOMAIN` (d=); repeat for more signatures (required)")
	c.Flags.Var(&selectors, "s", "`SELECTOR` (s=); one per -d")
	c.Flags.Var(&keys, "k", "private key `FILE` (PEM, or a base64 Ed25519 seed); one per -d")
	canon := c.Flags.String("c", "relaxed/relaxed", "canonicalization `HEADER/BODY`: simple or relaxed each")
	headers := c.Flags.String("headers", "", "colon-separated h= `LIST`, From included (default: the package list, oversigned)")
	if status, stop := c.Parse(args); stop {
		return status
	}
	if status, stop := c.NoArgs(); stop {
		return status
	}
	switch {
	case len(domains) == 0:
		return c.Usagef("-d is required")
	case len(selectors) != len(domains):
		return c.Usagef("-s given %d times for %d -d: give one per -d", len(selectors), len(domains))
	case len(keys) != len(domains):
		return c.Usagef("-k given %d times for %d -d: give one per -d", len(keys), len(domains))
	}
	hc, bc, err := dkim.ParseCanonicalization(*canon)
	if err != nil || *canon == "" {
		return c.Usagef("-c %q: want simple or relaxed, as HEADER/BODY", *canon)
	}
	var hlist []string
	if *headers != "" {
		hlist = strings.Split(*headers, ":")
	}
	for i := range domains {
		if err := cli.CheckDKIM(domains[i], selectors[i], hlist); err != nil {
			return c.Usagef("%v", err)
		}
	}

	var signers []*dkim.Signer
	for i := range domains {
		pemBytes, err := os.ReadFile(keys[i])
		if err != nil {
			return c.Usagef("-k: %v", err)
		}
		key, err := dkim.ParsePrivateKey(pemBytes)
		if err != nil {
			return c.Usagef("-k %s: %s", keys[i], cli.Msg(err))
		}
		s, err := dkim.NewSigner(domains[i], selectors[i], key, &dkim.SignOptions{HeaderCanonicalization: hc, BodyCanonicalization: bc, Headers: hlist})
		if err != nil {
			return c.Usagef("-k %s: %s", keys[i], cli.Msg(err))
		}
		signers = append(signers, s)
	}

	msg := bufio.NewReader(&crlfReader{r: bufio.NewReaderSize(stdin, 64<<10)})
	head, err := readHeader(msg)
	if err != nil {
		return c.Failf("standard input: %v", err)
	}
	if err := dkim.Sign(context.Background(), stdout, io.MultiReader(bytes.NewReader(head), msg), signers...); err != nil {
		return c.Failf("%s", cli.Msg(err))
	}
	return cli.OK
}

// readHeader reads the header block of a message, through the empty line
// that ends it, and checks that there is one and that it has a From field
// (RFC 6376 §5.4). Lines end in CRLF.
func readHeader(r *bufio.Reader) ([]byte, error) {
	var head []byte
	from := false
	start, n := 0, 1 // where the line begins, and its number
	for {
		chunk, err := r.ReadSlice('\n')
		head = append(head, chunk...)
		if len(head) > dkim.DefaultMaxHeaderBytes {
			return nil, fmt.Errorf("header block over %d octets", dkim.DefaultMaxHeaderBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // the rest of a long line
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		line := head[start:]
		if string(line) == "\r\n" {
			break
		}
		if len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			name, _, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return nil, fmt.Errorf("header line %d has no colon: %q", n, bytes.TrimRight(line, "\r\n"))
			}
			from = from || strings.EqualFold(string(bytes.TrimRight(name, " \t")), "From")
		}
		if err == io.EOF {
			break
		}
		start, n = len(head), n+1
	}
	switch {
	case len(head) == 0:
		return nil, errors.New("empty message")
	case !from:
		return nil, errors.New("no From field: RFC 6376 §5.4 requires From to be signed")
	}
	return head, nil
}

// crlfReader makes every bare LF of r a CRLF, so that the message written
// has the line ends its signatures were computed over.
type crlfReader struct {
	r   *bufio.Reader
	cr  bool   // the last byte taken from r was CR
	buf []byte // bytes made but not yet read
	err error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		chunk, err := c.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			c.err = err
		}
		if len(chunk) == 0 {
			continue
		}
		c.buf = append(c.buf[:0], chunk...)
		if n := len(c.buf); c.buf[n-1] == '\n' && !(n > 1 && c.buf[n-2] == '\r' || n == 1 && c.cr) {
			c.buf = append(c.buf[:n-1], '\r', '\n')
		}
		c.cr = chunk[len(chunk)-1] == '\r'
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
