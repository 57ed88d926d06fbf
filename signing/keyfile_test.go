package signing

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestParseKeyType(t *testing.T) {
	tests := []struct {
		in   string
		want KeyType
	}{
		{"rsa", RSA2048},
		{"RSA", RSA2048},
		{"rsa2048", RSA2048},
		{"rsa3072", RSA3072},
		{"rsa4096", RSA4096},
		{"ecdsa", ECDSAP256},
		{"ec", ECDSAP256},
		{"p256", ECDSAP256},
		{"ecdsa-p256", ECDSAP256},
		{" ECDSA-P256\n", ECDSAP256},
	}
	for _, tt := range tests {
		got, err := ParseKeyType(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseKeyType(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "dsa", "rsa1024", "rsa8192", "ed25519", "p384", "ecdsa-p384"} {
		got, err := ParseKeyType(bad)
		if err == nil || !strings.Contains(err.Error(), "unknown key type") || !strings.Contains(err.Error(), "ecdsa-p256") {
			t.Errorf("ParseKeyType(%q) = %q, %v; want an error listing the valid types", bad, got, err)
		}
	}
}

func TestGenerateKeyPEM(t *testing.T) {
	// RSA sizes are covered through the cached keys; generation of each
	// type is exercised by testKeyPEM.
	for _, kt := range allKeyTypes {
		p := testKeyPEM(t, kt)
		if !bytes.HasPrefix(p, []byte("-----BEGIN PRIVATE KEY-----\n")) {
			t.Errorf("GenerateKeyPEM(%s) is not a PKCS #8 PRIVATE KEY block: %.40q", kt, p)
		}
	}
	for _, bad := range []KeyType{"", "rsa", "ec", "dsa"} {
		if p, err := GenerateKeyPEM(bad); err == nil || p != nil {
			t.Errorf("GenerateKeyPEM(%q) = %d bytes, %v; want error (aliases need ParseKeyType)", bad, len(p), err)
		}
	}
}

// assertMode checks the permission bits of path, except on Windows, which
// does not have them.
func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %v, want %v", path, got, want)
	}
}

// assertDirEntries checks that dir holds exactly names, which also proves
// no temporary files were left behind.
func assertDirEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	for _, kt := range []KeyType{RSA2048, ECDSAP256} {
		t.Run(string(kt), func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "state", "keys")
			path := filepath.Join(dir, "signing.pem")

			s1, created, err := LoadOrCreateKeyFile(path, kt)
			if err != nil {
				t.Fatalf("first LoadOrCreateKeyFile: %v", err)
			}
			if !created {
				t.Error("first call: created = false, want true")
			}
			assertMode(t, path, 0o600)
			assertMode(t, path+".pub", 0o644)
			assertMode(t, filepath.Join(root, "state"), 0o700)
			assertMode(t, dir, 0o700)
			assertDirEntries(t, dir, "signing.pem", "signing.pem.pub")
			pub, err := os.ReadFile(path + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pub, s1.PublicKeyPEM()) {
				t.Errorf("%s.pub = %s, want %s", path, pub, s1.PublicKeyPEM())
			}
			priv, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			// The second call loads the same key, whatever kt says.
			s2, created, err := LoadOrCreateKeyFile(path, RSA4096)
			if err != nil {
				t.Fatalf("second LoadOrCreateKeyFile: %v", err)
			}
			if created {
				t.Error("second call: created = true, want false")
			}
			if !bytes.Equal(s2.PublicKeyPEM(), s1.PublicKeyPEM()) || s2.Algorithm() != s1.Algorithm() {
				t.Errorf("second call loaded %s key %s, want the first %s key", s2.Algorithm(), s2.PublicKeyPEM(), s1.Algorithm())
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, priv) {
				t.Error("second call modified the private key file")
			}
			assertDirEntries(t, dir, "signing.pem", "signing.pem.pub")

			sig, err := s2.Sign([]byte("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(pub, []byte("{}"), sig); err != nil {
				t.Errorf("signature by the loaded key does not verify with the written .pub: %v", err)
			}
		})
	}
}

func TestLoadOrCreateKeyFileReplacesStalePub(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(path+".pub", []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, created, err := LoadOrCreateKeyFile(path, ECDSAP256)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKeyFile = %v, %v; want created", created, err)
	}
	if pub, _ := os.ReadFile(path + ".pub"); !bytes.Equal(pub, s.PublicKeyPEM()) {
		t.Errorf(".pub = %q, want the new public key", pub)
	}
	assertMode(t, path+".pub", 0o644)
}

func TestLoadOrCreateKeyFileRefusesBadFile(t *testing.T) {
	tests := []struct {
		name, content, wantErr string
	}{
		{"empty", "", "no PEM-encoded private key"},
		{"garbage", "not a key at all\n", "no PEM-encoded private key"},
		{"truncated", string(testKeyPEM(t, ECDSAP256)[:100]), "no PEM-encoded private key"},
		{"public key", string(testSigner(t, ECDSAP256).PublicKeyPEM()), `found a "PUBLIC KEY" PEM block`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.pem")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, created, err := LoadOrCreateKeyFile(path, ECDSAP256)
			if err == nil || s != nil || created {
				t.Fatalf("LoadOrCreateKeyFile = %v, %v, %v; want an error", s, created, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name %s and contain %q", err, path, tt.wantErr)
			}
			if got, _ := os.ReadFile(path); string(got) != tt.content {
				t.Error("the bad key file was modified")
			}
			assertDirEntries(t, dir, "key.pem")
		})
	}
}

func TestLoadOrCreateKeyFileUnknownType(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "key.pem")
	_, created, err := LoadOrCreateKeyFile(path, "dsa")
	if err == nil || created || !strings.Contains(err.Error(), "unknown key type") {
		t.Fatalf("LoadOrCreateKeyFile(dsa) = %v, %v; want unknown key type error", created, err)
	}
	assertDirEntries(t, dir) // nothing created, not even the directory
}

// TestLoadOrCreateKeyFileConcurrent checks that racing creators agree on a
// single key: exactly one generates it and none overwrites another's.
func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	const n = 8
	type result struct {
		pub     []byte
		created bool
		err     error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, created, err := LoadOrCreateKeyFile(path, ECDSAP256)
			results[i] = result{created: created, err: err}
			if err == nil {
				results[i].pub = s.PublicKeyPEM()
			}
		})
	}
	wg.Wait()
	onDisk, err := ParsePrivateKeyPEM(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	creators := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("caller %d: %v", i, r.err)
			continue
		}
		if r.created {
			creators++
		}
		if !bytes.Equal(r.pub, onDisk.PublicKeyPEM()) {
			t.Errorf("caller %d got a key other than the one on disk", i)
		}
	}
	if creators != 1 {
		t.Errorf("%d callers reported creating the key, want 1", creators)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteKeyPair(t *testing.T) {
	root := t.TempDir()
	priv := filepath.Join(root, "private", "key.pem")
	pub := filepath.Join(root, "public", "key.pub")
	if err := WriteKeyPair(ECDSAP256, priv, pub); err != nil {
		t.Fatalf("WriteKeyPair: %v", err)
	}
	assertMode(t, priv, 0o600)
	assertMode(t, pub, 0o644)
	assertMode(t, filepath.Dir(priv), 0o700)
	assertDirEntries(t, filepath.Dir(priv), "key.pem")
	assertDirEntries(t, filepath.Dir(pub), "key.pub")
	s, err := ParsePrivateKeyPEM(readFile(t, priv))
	if err != nil {
		t.Fatal(err)
	}
	if s.Algorithm() != "ECDSA-P256" {
		t.Errorf("Algorithm() = %q", s.Algorithm())
	}
	if got := readFile(t, pub); !bytes.Equal(got, s.PublicKeyPEM()) {
		t.Errorf("public key file does not match the private key")
	}
}

func TestWriteKeyPairRefusesOverwrite(t *testing.T) {
	const existing = "existing content"
	tests := []struct {
		name         string
		privExists   bool
		pubExists    bool
		samePath     bool
		kt           KeyType
		wantErr      string
		wantErrExist bool
	}{
		{name: "private exists", privExists: true, kt: ECDSAP256, wantErr: "file already exists", wantErrExist: true},
		{name: "public exists", pubExists: true, kt: ECDSAP256, wantErr: "file already exists", wantErrExist: true},
		{name: "both exist", privExists: true, pubExists: true, kt: ECDSAP256, wantErr: "file already exists", wantErrExist: true},
		{name: "same path", samePath: true, kt: ECDSAP256, wantErr: "must differ"},
		{name: "unknown type", kt: "rsa", wantErr: "unknown key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			priv, pub := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
			if tt.samePath {
				pub = priv
			}
			var want []string
			for _, f := range []struct {
				path   string
				exists bool
			}{{priv, tt.privExists}, {pub, tt.pubExists}} {
				if f.exists {
					if err := os.WriteFile(f.path, []byte(existing), 0o600); err != nil {
						t.Fatal(err)
					}
					want = append(want, filepath.Base(f.path))
				}
			}
			err := WriteKeyPair(tt.kt, priv, pub)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("WriteKeyPair = %v, want error containing %q", err, tt.wantErr)
			}
			if got := errors.Is(err, fs.ErrExist); got != tt.wantErrExist {
				t.Errorf("errors.Is(err, fs.ErrExist) = %v, want %v", got, tt.wantErrExist)
			}
			for _, name := range want {
				if got := readFile(t, filepath.Join(dir, name)); string(got) != existing {
					t.Errorf("%s was overwritten", name)
				}
			}
			assertDirEntries(t, dir, want...)
		})
	}
}

func TestWriteNewFileNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := writeNewFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeNewFile(path, []byte("two"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second writeNewFile = %v, want fs.ErrExist", err)
	}
	if got := readFile(t, path); string(got) != "one" {
		t.Errorf("file = %q, want %q", got, "one")
	}
	assertDirEntries(t, filepath.Dir(path), "f")
}
