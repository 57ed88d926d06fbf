package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyType names a kind of key to generate.
type KeyType string

// The key types GenerateKeyPEM can make. RSA2048 is what LicenseSpring's
// own servers use; ECDSAP256 signs roughly an order of magnitude faster and
// is verified by the Node SDK through the same createVerify('RSA-SHA256')
// call, but other SDKs may assume RSA.
const (
	RSA2048   KeyType = "rsa2048"
	RSA3072   KeyType = "rsa3072"
	RSA4096   KeyType = "rsa4096"
	ECDSAP256 KeyType = "ecdsa-p256"
)

// ParseKeyType parses a key type name as given in configuration or on the
// command line, ignoring case and surrounding space. Besides the KeyType
// constants' values it accepts "rsa" (RSA2048) and "ecdsa", "ec" and "p256"
// (ECDSAP256).
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "rsa", "rsa2048":
		return RSA2048, nil
	case "rsa3072":
		return RSA3072, nil
	case "rsa4096":
		return RSA4096, nil
	case "ecdsa", "ec", "p256", "ecdsa-p256":
		return ECDSAP256, nil
	}
	return "", unknownKeyType(s)
}

func unknownKeyType(s string) error {
	return fmt.Errorf("unknown key type %q; want one of %s, %s, %s, %s", s, RSA2048, RSA3072, RSA4096, ECDSAP256)
}

// GenerateKeyPEM generates a new private key of type kt and returns it as a
// PKCS #8 "PRIVATE KEY" PEM block, the form every current tool reads.
func GenerateKeyPEM(kt KeyType) (privatePEM []byte, err error) {
	var key any
	switch kt {
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		key, err = rsa.GenerateKey(rand.Reader, 4096)
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		// Aliases such as "rsa" must go through ParseKeyType first.
		return nil, unknownKeyType(string(kt))
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", kt, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding %s key: %w", kt, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadOrCreateKeyFile reads the private key at path. If the file does not
// exist it generates a key of type kt, writes it with mode 0600 (creating
// missing directories with mode 0700) atomically, so that a crash never
// leaves a partial key behind, and writes the public key next to it as
// path+".pub" (0644) for distribution to SDK users. created reports whether
// it generated the key. kt matters only when generating.
//
// An existing file that cannot be read or parsed is an error, never a
// reason to generate: replacing a key would silently break every deployed
// client that pins the old public key. If another process creates the file
// concurrently, its key is loaded and used.
func LoadOrCreateKeyFile(path string, kt KeyType) (s *Signer, created bool, err error) {
	s, err = loadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	privPEM, err := GenerateKeyPEM(kt)
	if err != nil {
		return nil, false, err
	}
	s, err = ParsePrivateKeyPEM(privPEM)
	if err != nil {
		return nil, false, fmt.Errorf("parsing generated key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("creating key directory: %w", err)
	}
	if err := writeNewFile(path, privPEM, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Lost a race with another process: use the key on disk, so
			// both agree with what the next start will load.
			s, err = loadKeyFile(path)
			return s, false, err
		}
		return nil, false, fmt.Errorf("writing private key: %w", err)
	}
	// The public key is derived data, so a stale one is replaced.
	if err := replaceFile(path+".pub", s.PublicKeyPEM(), 0o644); err != nil {
		return nil, false, fmt.Errorf("private key written to %s, but writing its public key: %w", path, err)
	}
	return s, true, nil
}

// loadKeyFile reads and parses the private key at path. A missing file
// yields an error wrapping fs.ErrNotExist.
func loadKeyFile(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError, naming the path
	}
	s, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return s, nil
}

// WriteKeyPair generates a key of type kt and writes the private key to
// privPath (0600) and the public key to pubPath (0644), creating missing
// directories. It refuses to overwrite existing files (the error wraps
// fs.ErrExist), since overwriting a key in use would lock clients out.
func WriteKeyPair(kt KeyType, privPath, pubPath string) error {
	if filepath.Clean(privPath) == filepath.Clean(pubPath) {
		return errors.New("private and public key paths must differ")
	}
	// Check both before generating, so a refusal leaves nothing behind.
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return &fs.PathError{Op: "write key", Path: p, Err: fs.ErrExist}
		}
	}
	privPEM, err := GenerateKeyPEM(kt)
	if err != nil {
		return err
	}
	s, err := ParsePrivateKeyPEM(privPEM)
	if err != nil {
		return fmt.Errorf("parsing generated key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(privPath), 0o700); err != nil {
		return fmt.Errorf("creating private key directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(pubPath), 0o755); err != nil {
		return fmt.Errorf("creating public key directory: %w", err)
	}
	if err := writeNewFile(privPath, privPEM, 0o600); err != nil {
		return fmt.Errorf("writing private key: %w", err)
	}
	if err := writeNewFile(pubPath, s.PublicKeyPEM(), 0o644); err != nil {
		// Do not leave a private key without its public half; it is ours,
		// created just above.
		_ = os.Remove(privPath)
		return fmt.Errorf("writing public key: %w", err)
	}
	return nil
}

// writeNewFile atomically creates path with data and mode perm, failing
// with an error wrapping fs.ErrExist if path exists. The data is written
// to a temporary file that is then hard-linked into place: unlike rename,
// link never replaces an existing file, so concurrent creators cannot
// overwrite each other's keys.
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	if err != nil {
		// Some file systems (FAT, some network mounts) lack hard links.
		// Rename is still atomic, only not exclusive against a racing
		// creator, so check first to never overwrite an existing file.
		if _, serr := os.Lstat(path); serr == nil {
			return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	syncDir(filepath.Dir(path))
	return nil
}

// replaceFile atomically creates or replaces path with data and mode perm.
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeTemp writes data to a new, synced temporary file beside path with
// mode perm and returns its name. The mode is set before any data is
// written, so a private key is never readable by others, even briefly.
func writeTemp(path string, data []byte, perm fs.FileMode) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	name = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(name)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

// syncDir makes a new directory entry durable. It is best effort: some
// platforms (Windows) cannot sync a directory, and the file itself is
// already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
