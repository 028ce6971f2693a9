package relay_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// What the tests with real servers (peer_*_test.go) share.

// peerCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1,
// and its key, as PEM files in dir, for a real server to present; pool
// holds the certificate for the client to verify it with.
func peerCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "relay peer test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// The message of the peer tests, with what a submission must deliver
// unchanged though it goes differently on the wire: bare LF line ends,
// lines that begin with a dot and a line that is a dot alone (stuffed
// with DATA, RFC 5321 §4.5.2), and no line end at the end.
const peerMessage = "From: alice@example.com\n" +
	"To: bob@example.org\n" +
	"Date: Thu, 01 Jan 2026 00:00:00 +0000\n" +
	"Message-ID: <peer-test@example.com>\n" +
	"Subject: real peer\n" +
	"\n" +
	".a line that begins with a dot\r\n" +
	".\n" +
	"..two dots\n" +
	"the last line, without its end"

// peerMessageWire is peerMessage as the server must store it: every line
// ending in CRLF (RFC 5321 §2.3.8), a final CRLF, and the dots as they
// were.
const peerMessageWire = "From: alice@example.com\r\n" +
	"To: bob@example.org\r\n" +
	"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n" +
	"Message-ID: <peer-test@example.com>\r\n" +
	"Subject: real peer\r\n" +
	"\r\n" +
	".a line that begins with a dot\r\n" +
	".\r\n" +
	"..two dots\r\n" +
	"the last line, without its end\r\n"

// checkNoPlainCredentials fails t when the bytes a client wrote on the
// TCP connection (below TLS) begin otherwise than with plain, or hold the
// password or its base64 in any of the forms of PLAIN or LOGIN (RFC 4616
// §2; RFC 4954 §4), anywhere.
func checkNoPlainCredentials(t *testing.T, raw []byte, plain, user, password string) {
	t.Helper()
	// A TLS handshake record (RFC 8446 §5.1: type 22, version 3.x)
	// follows the plaintext at once.
	if !bytes.HasPrefix(raw, []byte(plain+"\x16\x03")) {
		n := min(len(raw), len(plain)+2)
		t.Errorf("the client wrote %q before its TLS handshake, want %q", raw[:n], plain)
	}
	b64 := base64.StdEncoding.EncodeToString
	for _, secret := range []string{
		password,
		b64([]byte(password)),
		b64([]byte("\x00" + user + "\x00" + password)),
		b64([]byte(user + "\x00" + user + "\x00" + password)),
	} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the client wrote %q on the wire, outside TLS", secret)
		}
	}
}
