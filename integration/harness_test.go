// Package integration tests the license API through real Caddy processes
// built from ./cmd/caddy, configured with real Caddyfiles, and driven over
// HTTP by Go and by the official LicenseSpring Node SDK.
package integration

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/edgelicense/caddy-license-api/auth"
	"github.com/edgelicense/caddy-license-api/signing"
)

// caddyBin is the Caddy binary under test, built once by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "license-api-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBin = filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", caddyBin, "github.com/edgelicense/caddy-license-api/cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Credentials the test Caddyfiles use. The shared key reaches Caddy only
// through the environment, as the README recommends.
const (
	apiKey    = "test-api-key"
	sharedKey = "test-shared-key-kw4qSnpSwXzgiv5y"
)

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// node is one running Caddy.
type node struct {
	t         *testing.T
	base      string // http://127.0.0.1:port
	admin     string
	dir       string
	db        string
	publicKey []byte
	caddyfile string
	logs      *syncBuffer
	cmd       *exec.Cmd
	exited    chan struct{}
	// client sends the API requests; nil for http.DefaultClient. Load
	// tests set one that keeps as many connections open as they have
	// workers.
	client *http.Client
}

// nodeConfig describes the license_api block of a test Caddy.
type nodeConfig struct {
	seed    string // path; default testdata/seed.json
	keyType signing.KeyType
	// defaultKey leaves signing_key out, so Caddy generates one in its
	// data directory.
	defaultKey bool
	store      string // the store line; default a SQLite file in the node's directory
	extra      string // more lines inside the license_api block
	env        []string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode starts a Caddy with the license API and waits until it serves.
func startNode(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, dir: dir, db: filepath.Join(dir, "license_api.db"), logs: &syncBuffer{}, exited: make(chan struct{})}
	if cfg.keyType == "" {
		cfg.keyType = signing.RSA2048
	}
	keyPath := filepath.Join(dir, "signing_key.pem")
	keyLine := "signing_key " + keyPath
	if cfg.defaultKey {
		keyPath = filepath.Join(dir, "data", "caddy", "license_api", "signing_key.pem")
		keyLine = ""
	} else if err := signing.WriteKeyPair(cfg.keyType, keyPath, keyPath+".pub"); err != nil {
		t.Fatal(err)
	}
	if cfg.seed == "" {
		cfg.seed = "testdata/seed.json"
	}
	seed, err := filepath.Abs(cfg.seed)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.store == "" {
		cfg.store = "store sqlite " + n.db
	}
	port, adminPort := freePort(t), freePort(t)
	n.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	n.admin = fmt.Sprintf("127.0.0.1:%d", adminPort)
	caddyfile := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	license_api {
		api_key %s {env.TEST_SHARED_KEY}
		%s
		company_id 276
		seed %s
		%s
		%s
	}
	respond "next handler" 418
}
`, n.admin, port, apiKey, keyLine, seed, cfg.store, cfg.extra)
	n.caddyfile = caddyfile
	cfPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfPath, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(caddyBin, "run", "--config", cfPath, "--adapter", "caddyfile")
	n.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "TEST_SHARED_KEY="+sharedKey)
	n.cmd.Env = append(n.cmd.Env, cfg.env...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(n.stop)
	n.waitReady()
	pub, err := os.ReadFile(keyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	n.publicKey = pub
	return n
}

// reload replaces the running config through the admin endpoint, as
// `caddy reload --force` does: forced, so that Caddy provisions the handlers
// again even when the Caddyfile is the one running (as after an edit of the
// seed file alone).
func (n *node) reload(caddyfile string) {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+n.admin+"/load", strings.NewReader(caddyfile))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		n.t.Fatalf("reload: %d %s", resp.StatusCode, msg)
	}
	n.caddyfile = caddyfile
	// The old server closes its idle keep-alive connections; a POST on one
	// of them would fail with EOF (Go retries only idempotent requests).
	http.DefaultClient.CloseIdleConnections()
	if n.client != nil {
		n.client.CloseIdleConnections()
	}
	// Caddy's /load returns once the old server has begun to shut down,
	// not once it has, and a POST right after could still meet a closed
	// connection (EOF or a reset: TestReload failed so in 3 of 300 runs).
	// Polling with a GET, which Go retries on a new connection, leaves a
	// working one for the next request (0 failures in 180 runs since).
	n.waitReady()
}

// waitReady polls until the site answers (its fallback handler says 418),
// or fails the test if Caddy exits or takes longer than 30 s.
func (n *node) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.t.Fatalf("caddy exited during start-up:\n%s", n.logs)
		default:
		}
		// An unauthenticated API request is answered (missing_headers) only
		// once the license_api app has opened the store: other paths may be
		// served before, since Caddy starts its apps in no set order.
		resp, err := http.Get(n.base + "/api/v4/check_license")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusBadRequest {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("caddy did not serve within 30s:\n%s", n.logs)
}

func (n *node) stop() {
	if n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// response is an answer of the API with its signature checked.
type response struct {
	status    int
	body      []byte
	signature string
}

// signedRequest is a request with the SDK's authentication headers.
type signedRequest struct {
	method   string
	endpoint string
	body     string
	date     string // default now
	apiKey   string // default apiKey
	shared   string // default sharedKey
	header   map[string]string
	omit     []string // headers to leave out
}

func (n *node) do(r signedRequest) response {
	n.t.Helper()
	resp, err := n.send(r)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp
}

// send is do for use from goroutines: it reports errors instead of failing.
func (n *node) send(r signedRequest) (response, error) {
	if r.method == "" {
		r.method = http.MethodPost
	}
	req, err := http.NewRequest(r.method, n.base+"/api/v4/"+r.endpoint, strings.NewReader(r.body))
	if err != nil {
		return response{}, err
	}
	if r.date == "" {
		r.date = time.Now().UTC().Format(http.TimeFormat)
	}
	if r.apiKey == "" {
		r.apiKey = apiKey
	}
	if r.shared == "" {
		r.shared = sharedKey
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Date", r.date)
	req.Header.Set("Authorization", auth.Header(r.apiKey, r.shared, r.date))
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	for _, k := range r.omit {
		req.Header.Del(k)
	}
	client := n.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: body, signature: resp.Header.Get("LicenseSignature")}, nil
}

// verified fails the test unless the response's signature verifies.
func (n *node) verified(r response) response {
	n.t.Helper()
	if err := signing.Verify(n.publicKey, r.body, r.signature); err != nil {
		n.t.Fatalf("LicenseSignature of %d %s: %v", r.status, r.body, err)
	}
	return r
}

// metrics returns the node's Prometheus metrics, read from the admin
// endpoint.
func (n *node) metrics() string {
	n.t.Helper()
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return string(text)
}

// metric returns the value of the unlabelled metric name; the test fails
// when /metrics lacks it.
func (n *node) metric(name string) int64 {
	n.t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(n.metrics())
	if m == nil {
		n.t.Fatalf("/metrics lacks %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64) // counters print as floats, 1e+06 for a million
	if err != nil {
		n.t.Fatal(err)
	}
	return int64(v)
}

// consume posts an add_feature_consumption body and checks the signature.
func (n *node) consume(body string) response {
	n.t.Helper()
	return n.verified(n.do(signedRequest{endpoint: "add_feature_consumption", body: body}))
}

// query reads the node's SQLite database (read-only; WAL lets it run beside
// Caddy's writer).
func (n *node) query(q string, args ...any) int64 {
	n.t.Helper()
	db, err := sql.Open("sqlite", "file:"+n.db+"?mode=ro")
	if err != nil {
		n.t.Fatal(err)
	}
	defer db.Close()
	var v int64
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		n.t.Fatal(err)
	}
	return v
}

func (n *node) total(licenseFeatureID int64) int64 {
	return n.query(`SELECT total FROM feature_counters WHERE id = ?`, licenseFeatureID)
}

func (n *node) ledgerRows(licenseFeatureID int64) int64 {
	return n.query(`SELECT COUNT(*) FROM consumption_ledger WHERE license_feature_id = ?`, licenseFeatureID)
}
