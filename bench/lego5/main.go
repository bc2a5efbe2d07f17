// Command bench-lego5 is make bench's strongest peer: one Go process that issues a batch of certificates, many orders in flight, through lego v5's library and its dns-persist-01 support.
//
//	bench-lego5 [flags] register   register an ACME account into -state and print the
//	                               persistent TXT records of the names (FQDN TAB value)
//	bench-lego5 [flags] issue      issue one certificate per name with that account, -parallel
//	                               at a time, and print one line in bench/peers.sh's format
//
// register runs before the timing, so that the records can be published before the batch, as on
// a renewal night; issue times the batch alone (wall clock and its own getrusage CPU). Pebble's CPU
// is not measured here: the line says pebble_cpu_ms_per_cert=NA, which bench/lego5.sh replaces.
//
// Exit status: 0 when every certificate was issued (issue) or the account registered (register),
// 1 otherwise, 2 on bad usage or bad input.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
)

const legoModule = "github.com/go-acme/lego/v5"

// usageError is bad input from the command line or a names file: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

type options struct {
	command       string
	directory     string
	caFile        string
	state         string
	n             int
	namesFile     string
	zone          string
	parallel      int
	keyType       certcrypto.KeyType
	dns           string
	out           string
	issuer        string
	certTimeout   time.Duration
	requestLimit  int
	http1         bool
	separate      bool
	verbose       bool
	failuresShown int
}

// account is what register leaves in -state for issue: the key in account.key (0600), the rest here.
type account struct {
	URL    string `json:"url"`
	Issuer string `json:"issuer"` // the issuer domain name the records name
}

// user is lego's view of our one account.
type user struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *user) GetEmail() string                       { return "" }
func (u *user) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer           { return u.key }

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err == nil {
		switch opts.command {
		case "register":
			err = register(opts)
		case "issue":
			var ok bool
			ok, err = issue(opts)
			if err == nil && !ok {
				os.Exit(1)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-lego5: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench-lego5", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.directory, "directory", "", "ACME directory URL (required)")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM file of the CA that signs the ACME server's HTTPS certificate (required)")
	fs.StringVar(&o.state, "state", "", "folder for the account key and URL, made 0700 (required)")
	fs.IntVar(&o.n, "n", 0, "certificates: names host<i>.<zone>, i from 1 to N")
	fs.StringVar(&o.namesFile, "names", "", "file of names, one per line (# comments), instead of -n")
	fs.StringVar(&o.zone, "zone", "lego5.bench.example", "zone of the names -n makes")
	fs.IntVar(&o.parallel, "parallel", 200, "orders in flight at once")
	keyType := fs.String("key-type", "ec256", "certificate key: ec256, ec384, rsa2048, rsa3072")
	fs.StringVar(&o.dns, "dns", "", "HOST:PORT of the DNS server lego looks the records up at (default: resolv.conf)")
	fs.StringVar(&o.out, "out", "", "folder to write NAME.crt and NAME.key (0600) into (default: keep nothing)")
	fs.StringVar(&o.issuer, "issuer", "", "issuer domain name of the records (default: the directory's first caaIdentity)")
	fs.DurationVar(&o.certTimeout, "cert-timeout", 30*time.Second, "lego's wait for a finalized order; it polls every 1/60 of it")
	fs.IntVar(&o.requestLimit, "request-limit", 1000, "lego's OverallRequestLimit (its default, 18, is Let's Encrypt's)")
	fs.BoolVar(&o.http1, "http1", false, "HTTP/1.1 with a pool of -parallel connections instead of HTTP/2")
	fs.BoolVar(&o.separate, "separate-new-orders", false, "never send newOrder while authorization fetches are in flight (Pebble 2.10's deadlock; see gate.go)")
	fs.BoolVar(&o.verbose, "v", false, "lego's log at level info on standard error (default: warnings)")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%v (see the comment at the top of bench/lego5/main.go)", err)
	}
	rest := fs.Args()
	if len(rest) != 1 || (rest[0] != "register" && rest[0] != "issue") {
		return nil, usagef("give one command, register or issue (got %q)", strings.Join(rest, " "))
	}
	o.command = rest[0]
	o.failuresShown = 3
	if o.directory == "" || !strings.HasPrefix(o.directory, "https://") {
		return nil, usagef("-directory must be an https:// URL (got %q)", o.directory)
	}
	if o.caFile == "" {
		return nil, usagef("-ca-file is required")
	}
	if o.state == "" {
		return nil, usagef("-state is required")
	}
	if (o.n > 0) == (o.namesFile != "") {
		return nil, usagef("give either -n N (N > 0) or -names FILE")
	}
	if o.n < 0 {
		return nil, usagef("-n must be positive (got %d)", o.n)
	}
	if o.parallel < 1 {
		return nil, usagef("-parallel must be at least 1 (got %d)", o.parallel)
	}
	if o.requestLimit < 1 {
		return nil, usagef("-request-limit must be at least 1 (got %d)", o.requestLimit)
	}
	if o.certTimeout < time.Second {
		return nil, usagef("-cert-timeout must be at least 1s (got %s)", o.certTimeout)
	}
	switch *keyType {
	case "ec256":
		o.keyType = certcrypto.EC256
	case "ec384":
		o.keyType = certcrypto.EC384
	case "rsa2048":
		o.keyType = certcrypto.RSA2048
	case "rsa3072":
		o.keyType = certcrypto.RSA3072
	default:
		return nil, usagef("-key-type %q: use ec256, ec384, rsa2048 or rsa3072", *keyType)
	}
	if o.dns != "" {
		if _, port, err := net.SplitHostPort(o.dns); err != nil || port == "" {
			return nil, usagef("-dns %q: give HOST:PORT", o.dns)
		}
	}
	if o.n > 0 && !validName(o.zone) {
		return nil, usagef("-zone %q is not a lowercase DNS name", o.zone)
	}
	return o, nil
}

// validName: a lowercase A-label name, at most 253 octets, optionally "*." first.
func validName(name string) bool {
	name = strings.TrimPrefix(name, "*.")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// loadNames returns the names -n or -names asks for.
func loadNames(o *options) ([]string, error) {
	if o.n > 0 {
		names := make([]string, o.n)
		for i := range names {
			names[i] = "host" + strconv.Itoa(i+1) + "." + o.zone
		}
		return names, nil
	}
	f, err := os.Open(o.namesFile)
	if err != nil {
		return nil, usagef("-names: %v", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(name, '#'); i >= 0 {
			name = strings.TrimSpace(name[:i])
		}
		if name == "" {
			continue
		}
		name = strings.TrimSuffix(name, ".")
		if !validName(name) {
			return nil, usagef("%s:%d: %q is not a lowercase DNS name", o.namesFile, line, name)
		}
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("-names %s: %v", o.namesFile, err)
	}
	if len(names) == 0 {
		return nil, usagef("-names %s holds no name", o.namesFile)
	}
	return names, nil
}

// httpClient trusts the CA of -ca-file alone. HTTP/2 carries every order over one connection
// (Go's HTTP/1.1 default keeps only 2 idle connections per host, so 200 goroutines would open
// and close TLS connections all the time); -http1 keeps a pool of -parallel connections.
func httpClient(o *options) (*http.Client, error) {
	pool, err := lego.CreateCertPool([]string{o.caFile}, false)
	if err != nil {
		return nil, usagef("-ca-file: %v", err)
	}
	tr := &http.Transport{
		Proxy:                 nil, // the stack is on loopback
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		TLSClientConfig:       &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2:     !o.http1,
		MaxIdleConns:          o.parallel,
		MaxIdleConnsPerHost:   o.parallel,
		IdleConnTimeout:       90 * time.Second,
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: tr}
	if o.separate {
		newOrder, err := directoryNewOrder(hc, o.directory)
		if err != nil {
			return nil, err
		}
		hc.Transport = newGateTransport(tr, newOrder)
	}
	return hc, nil
}

// directoryNewOrder reads the newOrder URL from the ACME directory.
func directoryNewOrder(hc *http.Client, directory string) (string, error) {
	resp, err := hc.Get(directory)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", directory, err)
	}
	defer resp.Body.Close()
	var dir struct {
		NewOrder string `json:"newOrder"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d", directory, resp.StatusCode)
	}
	if err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&dir); err != nil || dir.NewOrder == "" {
		return "", fmt.Errorf("GET %s: no newOrder in the directory", directory)
	}
	return dir.NewOrder, nil
}

func newClient(o *options, u *user) (*lego.Client, error) {
	hc, err := httpClient(o)
	if err != nil {
		return nil, err
	}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = o.directory
	cfg.HTTPClient = hc
	cfg.UserAgent = "certfleet-bench-lego5"
	cfg.Certificate.Timeout = o.certTimeout
	cfg.Certificate.OverallRequestLimit = o.requestLimit
	client, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("lego.NewClient %s: %w", o.directory, err)
	}
	return client, nil
}

func setLogging(o *options) {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	// lego logs to standard output by default, where the result line goes
	legolog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// stateDir makes -state private (0700) and returns the paths of the key and the account file.
func stateDir(o *options) (keyPath, accountPath string, err error) {
	if err = os.MkdirAll(o.state, 0o700); err != nil {
		return "", "", fmt.Errorf("-state: %w", err)
	}
	if err = os.Chmod(o.state, 0o700); err != nil {
		return "", "", fmt.Errorf("-state: %w", err)
	}
	return filepath.Join(o.state, "account.key"), filepath.Join(o.state, "account.json"), nil
}

// writePrivate writes data to path, readable by the owner alone, replacing what was there.
func writePrivate(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// register makes an account key, registers it, saves both in -state, and prints the records.
func register(o *options) error {
	names, err := loadNames(o)
	if err != nil {
		return err
	}
	setLogging(o)
	keyPath, accountPath, err := stateDir(o)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("account key: %w", err)
	}
	u := &user{key: key}
	client, err := newClient(o, u)
	if err != nil {
		return err
	}
	reg, err := client.Registration.Register(context.Background(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return fmt.Errorf("register at %s: %w", o.directory, err)
	}
	if reg.Location == "" {
		return fmt.Errorf("register at %s: no account URL in the answer", o.directory)
	}
	issuer := o.issuer
	if issuer == "" {
		ids := client.GetServerMetadata().CaaIdentities
		if len(ids) == 0 {
			return usagef("the directory %s names no caaIdentities: give -issuer", o.directory)
		}
		issuer = ids[0]
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("account key: %w", err)
	}
	if err = writePrivate(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
		return fmt.Errorf("write %s: %w", keyPath, err)
	}
	acc, _ := json.Marshal(account{URL: reg.Location, Issuer: issuer})
	if err = writePrivate(accountPath, append(acc, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", accountPath, err)
	}
	return printRecords(names, issuer, reg.Location)
}

// printRecords prints each name's persistent record as lego builds it (GetChallengeInfo, the
// function its dns-persist-01 solver calls when the record is missing): FQDN TAB value.
func printRecords(names []string, issuer, accountURL string) error {
	w := bufio.NewWriter(os.Stdout)
	for _, name := range names {
		authz := acme.Authorization{
			Identifier: acme.Identifier{Type: "dns", Value: strings.TrimPrefix(name, "*.")},
			Wildcard:   strings.HasPrefix(name, "*."),
		}
		info, err := dnspersist01.GetChallengeInfo(authz, issuer, accountURL, time.Time{})
		if err != nil {
			return fmt.Errorf("record of %s: %w", name, err)
		}
		fmt.Fprintf(w, "%s\t%s\n", info.FQDN, info.Value)
	}
	return w.Flush()
}

func loadAccount(o *options) (*user, *account, error) {
	keyPath, accountPath, err := stateDir(o)
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(accountPath)
	if err != nil {
		return nil, nil, fmt.Errorf("no account (run register first): %w", err)
	}
	var acc account
	if err = json.Unmarshal(raw, &acc); err != nil || acc.URL == "" {
		return nil, nil, fmt.Errorf("%s: not an account file", accountPath)
	}
	pemKey, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("account key: %w", err)
	}
	block, _ := pem.Decode(pemKey)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return &user{key: key, reg: &acme.ExtendedAccount{Location: acc.URL}}, &acc, nil
}

// setupDNSPersist01 makes dns-persist-01 the client's only solver. The records are in place
// before the batch, so lego finds each one with its first lookup and never asks for it to be
// written (its solver's provider is a manual one: it would prompt on standard input). Its
// propagation checks are then redundant: the wait between checks (DNSPERSIST_MANUAL_POLLING_
// INTERVAL, 2 s by default, slept once per order even when the record is found) is set to 0,
// and the checks are skipped. The authoritative check could not work here anyway: it asks the
// zone's servers on port 53.
func setupDNSPersist01(o *options, client *lego.Client, issuer string) error {
	if o.dns != "" {
		dopts := dnspersist01.NewOptions()
		dopts.RecursiveNameservers = []string{o.dns}
		dnspersist01.SetDefaultClient(dnspersist01.NewClient(dopts))
	}
	if err := os.Setenv("DNSPERSIST_MANUAL_POLLING_INTERVAL", "0"); err != nil {
		return err
	}
	return client.Challenge.SetDNSPersist01(
		dnspersist01.WithIssuerDomainName(issuer),
		dnspersist01.PropagationWait(0, true),
	)
}

// checkCert reports why a bundle is not a certificate for name, or nil.
func checkCert(bundle []byte, name string) error {
	certs, err := certcrypto.ParsePEMBundle(bundle)
	if err != nil {
		return fmt.Errorf("parse the certificate: %w", err)
	}
	if !slices.Contains(certs[0].DNSNames, name) {
		return fmt.Errorf("the certificate's SANs %v do not hold %s", certs[0].DNSNames, name)
	}
	return nil
}

func writeCert(dir, name string, res *certificate.Resource) error {
	base := filepath.Join(dir, strings.ReplaceAll(name, "*", "_"))
	if err := writePrivate(base+".key", res.PrivateKey); err != nil {
		return err
	}
	return os.WriteFile(base+".crt", res.Certificate, 0o644)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func legoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == legoModule {
				return d.Version
			}
		}
	}
	return "unknown"
}

// issue runs the batch: -parallel goroutines take the names in turn, each order with
// Certificate.Obtain. It returns whether every certificate was issued.
func issue(o *options) (bool, error) {
	names, err := loadNames(o)
	if err != nil {
		return false, err
	}
	setLogging(o)
	if o.out != "" {
		if err = os.MkdirAll(o.out, 0o755); err != nil {
			return false, fmt.Errorf("-out: %w", err)
		}
	}
	u, acc, err := loadAccount(o)
	if err != nil {
		return false, err
	}
	client, err := newClient(o, u)
	if err != nil {
		return false, err
	}
	issuer := o.issuer
	if issuer == "" {
		issuer = acc.Issuer
	}
	if err = setupDNSPersist01(o, client, issuer); err != nil {
		return false, fmt.Errorf("dns-persist-01 solver: %w", err)
	}
	p := min(o.parallel, len(names))

	var (
		next, ok atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	ctx := context.Background()
	cpu0, t0 := cpuTime(), time.Now()
	for range p {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				name := names[i]
				res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{
					Domains: []string{name},
					KeyType: o.keyType,
					Bundle:  true,
				})
				if err == nil {
					err = checkCert(res.Certificate, name)
				}
				if err == nil && o.out != "" {
					err = writeCert(o.out, name, res)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, name+": "+err.Error())
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	wall, cpu := time.Since(t0), cpuTime()-cpu0

	for i, f := range failures {
		if i == o.failuresShown {
			fmt.Fprintf(os.Stderr, "bench-lego5: ... and %d more failures\n", len(failures)-i)
			break
		}
		fmt.Fprintf(os.Stderr, "bench-lego5: failed: %s\n", f)
	}
	k := ok.Load()
	perCert := "NA"
	if k > 0 {
		perCert = fmt.Sprintf("%.1f", float64(cpu.Microseconds())/1000/float64(k))
	}
	fmt.Printf("peer=lego5 mode=parallel n=%d parallel=%d ok=%d wall_s=%.2f certs_per_s=%.2f cpu_ms_per_cert=%s pebble_cpu_ms_per_cert=NA cpu_ms_total=%.0f version=%s trust=ca-file\n",
		len(names), p, k, wall.Seconds(), float64(k)/wall.Seconds(), perCert, float64(cpu.Microseconds())/1000, legoVersion())
	return k == int64(len(names)), nil
}
