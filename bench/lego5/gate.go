// gate.go - keeps newOrder requests and authorization fetches to the CA from being in flight at the same time (-separate-new-orders).
//
// Pebble 2.10 takes its store lock and then an authorization's lock while creating an order, and
// the two the other way round while answering an authorization fetch; a newOrder and an
// authorization fetch that overlap with a third writer deadlock it for good. lego sends both from
// every goroutine at once, so with 200 orders in flight Pebble stops answering within seconds.
// certfleet's --separate-new-orders (workers/cagate.c) avoids it the same way: the two classes
// take turns, and a turn ends after gateTurnMax grants when the other class waits, so neither
// starves. Other requests pass freely.
package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

const gateTurnMax = 256

const (
	classNewOrder = 0
	classAuthz    = 1
	classOther    = -1
)

// gate counts the requests of each class in flight and waiting.
type gate struct {
	mu       sync.Mutex
	cond     *sync.Cond
	inflight [2]int
	waiting  [2]int
	turn     int // the class granted last
	granted  int // grants in the current turn
}

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// mayGo: called with mu held.
func (g *gate) mayGo(c int) bool {
	o := 1 - c
	if g.inflight[o] > 0 {
		return false
	}
	if g.turn == c {
		return g.granted < gateTurnMax || g.waiting[o] == 0
	}
	return g.waiting[o] == 0 || g.granted >= gateTurnMax
}

func (g *gate) acquire(c int) {
	g.mu.Lock()
	g.waiting[c]++
	for !g.mayGo(c) {
		g.cond.Wait()
	}
	g.waiting[c]--
	if g.turn != c {
		g.turn, g.granted = c, 0
	}
	g.granted++
	g.inflight[c]++
	g.mu.Unlock()
}

func (g *gate) release(c int) {
	g.mu.Lock()
	g.inflight[c]--
	g.mu.Unlock()
	g.cond.Broadcast()
}

// gateTransport classifies each request and holds it at the gate until its answer is read.
type gateTransport struct {
	rt           http.RoundTripper
	g            *gate
	newOrderPath string
	newOrderHost string
}

func newGateTransport(rt http.RoundTripper, newOrderURL string) *gateTransport {
	t := &gateTransport{rt: rt, g: newGate()}
	if u, err := url.Parse(newOrderURL); err == nil {
		t.newOrderHost, t.newOrderPath = u.Host, u.Path
	}
	return t
}

// classify: newOrder is the directory's URL; an authorization fetch is a POST under Pebble's
// /authZ/ path (the deadlock is Pebble's, so its paths are what matters).
func (t *gateTransport) classify(req *http.Request) int {
	if req.Method != http.MethodPost || req.URL.Host != t.newOrderHost {
		return classOther
	}
	switch {
	case req.URL.Path == t.newOrderPath:
		return classNewOrder
	case strings.HasPrefix(req.URL.Path, "/authZ/"):
		return classAuthz
	}
	return classOther
}

func (t *gateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.classify(req)
	if c == classOther {
		return t.rt.RoundTrip(req)
	}
	t.g.acquire(c)
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		t.g.release(c)
		return nil, err
	}
	resp.Body = &gatedBody{ReadCloser: resp.Body, release: func() { t.g.release(c) }}
	return resp, nil
}

// gatedBody releases its request's place at the gate when the body is closed.
type gatedBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *gatedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
