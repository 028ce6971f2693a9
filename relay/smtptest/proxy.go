package smtptest

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a target, adding a fixed delay each
// way, so that a client's round trips cost time in a benchmark the way
// they do across a network. Each chunk of bytes read from one side is
// written to the other delay after it was read: order is kept, and the
// delays of chunks in flight overlap rather than add up, as on a link with
// that latency.
type Proxy struct {
	// Addr is the proxy's address, "127.0.0.1:port".
	Addr string

	target  string
	delay   time.Duration
	ln      net.Listener
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// NewProxy starts a proxy on 127.0.0.1 to target (host:port). Close it
// when done.
func NewProxy(target string, delay time.Duration) (*Proxy, error) {
	if delay < 0 {
		return nil, fmt.Errorf("smtptest: negative proxy delay %v", delay)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	p := &Proxy{
		Addr:    ln.Addr().String(),
		target:  target,
		delay:   delay,
		ln:      ln,
		closing: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Close stops the proxy, closes its connections and waits for them.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closing)
		err = p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return err
}

// track adds a connection to close on Close; it fails once closing.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closing:
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

// forward joins a client to a new connection to the target.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); p.pipe(server, client) }()
	go func() { defer both.Done(); p.pipe(client, server) }()
	both.Wait()
}

// chunk is bytes read, and when to write them.
type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst, each chunk delay after it was read. At the end
// of src it half-closes dst; on an error it closes both, so that the other
// direction ends too.
func (p *Proxy) pipe(dst, src net.Conn) {
	queue := make(chan chunk, 64)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{buf[:n], time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	failed := false
	for c := range queue {
		if failed {
			continue // drain, so that the reader ends
		}
		if d := time.Until(c.at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.closing:
				t.Stop()
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			failed = true
			src.Close()
			dst.Close()
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok && !failed {
		tc.CloseWrite()
	}
}
