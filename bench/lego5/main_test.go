// main_test.go - bench-lego5's checks of its input, its records and its gate, without a CA.
package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var base = []string{"-directory", "https://localhost:14000/dir", "-ca-file", "ca.pem", "-state", "st"}

func TestParseOptionsRejects(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-n", "3"}, "give one command"},
		{[]string{"-n", "3", "renew"}, "give one command"},
		{[]string{"issue"}, "either -n N"},
		{[]string{"-n", "3", "-names", "f", "issue"}, "either -n N"},
		{[]string{"-n", "3", "-parallel", "0", "issue"}, "-parallel"},
		{[]string{"-n", "3", "-key-type", "ed25519", "issue"}, `-key-type "ed25519"`},
		{[]string{"-n", "3", "-dns", "127.0.0.1", "issue"}, `-dns "127.0.0.1"`},
		{[]string{"-n", "3", "-zone", "Bad_Zone", "issue"}, `-zone "Bad_Zone"`},
		{[]string{"-n", "x", "issue"}, "invalid value"},
	}
	for _, c := range cases {
		_, err := parseOptions(append(append([]string{}, base...), c.args...))
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	if _, err := parseOptions([]string{"-directory", "http://x/dir", "-ca-file", "c", "-state", "s", "-n", "1", "issue"}); err == nil {
		t.Error("an http:// directory was accepted")
	}
	o, err := parseOptions(append(append([]string{}, base...), "-n", "3", "-dns", "127.0.0.1:8053", "issue"))
	if err != nil || o.command != "issue" || o.parallel != 200 || o.n != 3 {
		t.Errorf("good options: %+v, %v", o, err)
	}
}

func TestLoadNames(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("# fleet\na.example.com\n\n  b.example.com.  # trailing dot\n*.c.example.com\n"), 0o600)
	names, err := loadNames(&options{namesFile: good})
	if err != nil || strings.Join(names, ",") != "a.example.com,b.example.com,*.c.example.com" {
		t.Fatalf("got %v, %v", names, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("a.example.com\nB.example.com\n"), 0o600)
	_, err = loadNames(&options{namesFile: bad})
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("bad line: got %v, want a usage error naming %s:2", err, bad)
	}
	names, _ = loadNames(&options{n: 2, zone: "z.example"})
	if strings.Join(names, ",") != "host1.z.example,host2.z.example" {
		t.Errorf("-n 2: got %v", names)
	}
}

// The records are lego's (GetChallengeInfo), in the form of the reference and Pebble's check.
func TestPrintRecords(t *testing.T) {
	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err := printRecords([]string{"a.example.com", "*.w.example.com"}, "pebble.letsencrypt.org", "https://localhost:14000/my-account/1")
	w.Close()
	os.Stdout = stdout
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	n, _ := r.Read(out)
	want := "_validation-persist.a.example.com.\tpebble.letsencrypt.org; accounturi=https://localhost:14000/my-account/1\n" +
		"_validation-persist.w.example.com.\tpebble.letsencrypt.org; accounturi=https://localhost:14000/my-account/1; policy=wildcard\n"
	if string(out[:n]) != want {
		t.Errorf("got\n%s\nwant\n%s", out[:n], want)
	}
}

// The gate never lets a newOrder and an authorization fetch overlap, and both classes finish.
func TestGateSeparatesClasses(t *testing.T) {
	var inflight [2]atomic.Int64
	var overlaps atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := classAuthz
		if r.URL.Path == "/order-plz" {
			c = classNewOrder
		}
		inflight[c].Add(1)
		if inflight[1-c].Load() > 0 {
			overlaps.Add(1)
		}
		time.Sleep(time.Millisecond)
		inflight[c].Add(-1)
	}))
	defer srv.Close()
	tr := newGateTransport(http.DefaultTransport, srv.URL+"/order-plz")
	hc := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var done [2]atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			path, c := "/authZ/x", classAuthz
			if i%2 == 0 {
				path, c = "/order-plz", classNewOrder
			}
			for range 20 {
				resp, err := hc.Post(srv.URL+path, "application/jose+json", nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				done[c].Add(1)
			}
		})
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Errorf("%d requests overlapped with the other class", overlaps.Load())
	}
	if done[0].Load() != 640 || done[1].Load() != 640 {
		t.Errorf("finished %d newOrders and %d authorization fetches, want 640 each", done[0].Load(), done[1].Load())
	}
	if tr.g.inflight != [2]int{} || tr.g.waiting != [2]int{} {
		t.Errorf("the gate still counts %v in flight and %v waiting", tr.g.inflight, tr.g.waiting)
	}
	if tr.classify(httptestRequest("GET", srv.URL+"/order-plz")) != classOther {
		t.Error("a GET was classified")
	}
}

func httptestRequest(method, url string) *http.Request {
	req, _ := http.NewRequest(method, url, nil)
	return req
}
