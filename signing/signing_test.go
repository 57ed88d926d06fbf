package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/edgelicense/caddy-license-api/internal/jsonjs"
	"github.com/edgelicense/caddy-license-api/internal/nodetest"
)

var allKeyTypes = []KeyType{RSA2048, RSA3072, RSA4096, ECDSAP256}

// testKeys caches one generated key per type, because RSA generation takes
// up to seconds and many tests need a key.
var testKeys = func() map[KeyType]func() ([]byte, error) {
	m := make(map[KeyType]func() ([]byte, error))
	for _, kt := range allKeyTypes {
		m[kt] = sync.OnceValues(func() ([]byte, error) { return GenerateKeyPEM(kt) })
	}
	return m
}()

// testKeyPEM returns the cached PKCS #8 PEM key of type kt.
func testKeyPEM(t testing.TB, kt KeyType) []byte {
	t.Helper()
	p, err := testKeys[kt]()
	if err != nil {
		t.Fatalf("GenerateKeyPEM(%s): %v", kt, err)
	}
	return p
}

// testSigner returns a Signer for the cached key of type kt.
func testSigner(t testing.TB, kt KeyType) *Signer {
	t.Helper()
	s, err := ParsePrivateKeyPEM(testKeyPEM(t, kt))
	if err != nil {
		t.Fatalf("ParsePrivateKeyPEM(%s key): %v", kt, err)
	}
	return s
}

// rawKey returns the crypto key inside the cached PEM key of type kt.
func rawKey(t testing.TB, kt KeyType) any {
	t.Helper()
	block, _ := pem.Decode(testKeyPEM(t, kt))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func mustDER(t testing.TB) func([]byte, error) []byte {
	return func(der []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
}

func TestParsePrivateKeyPEMAccepts(t *testing.T) {
	der := mustDER(t)
	rsaKey := rawKey(t, RSA2048).(*rsa.PrivateKey)
	ecKey := rawKey(t, ECDSAP256).(*ecdsa.PrivateKey)
	ecParams := encodePEM("EC PARAMETERS", der(x509.MarshalPKIXPublicKey(&ecKey.PublicKey))[:10])

	tests := []struct {
		name    string
		pem     []byte
		alg     string
		wantPub any
	}{
		{"pkcs1 rsa", encodePEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RSA-2048", &rsaKey.PublicKey},
		{"pkcs8 rsa", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(rsaKey))), "RSA-2048", &rsaKey.PublicKey},
		{"sec1 ec", encodePEM("EC PRIVATE KEY", der(x509.MarshalECPrivateKey(ecKey))), "ECDSA-P256", &ecKey.PublicKey},
		{"sec1 ec after ec parameters", append(ecParams, encodePEM("EC PRIVATE KEY", der(x509.MarshalECPrivateKey(ecKey)))...), "ECDSA-P256", &ecKey.PublicKey},
		{"pkcs8 ec", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(ecKey))), "ECDSA-P256", &ecKey.PublicKey},
		{"leading text", append([]byte("# generated for tests\n"), testKeyPEM(t, RSA2048)...), "RSA-2048", &rsaKey.PublicKey},
		{"pkcs8 rsa 3072", testKeyPEM(t, RSA3072), "RSA-3072", nil},
		{"pkcs8 rsa 4096", testKeyPEM(t, RSA4096), "RSA-4096", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParsePrivateKeyPEM(tt.pem)
			if err != nil {
				t.Fatalf("ParsePrivateKeyPEM: %v", err)
			}
			if got := s.Algorithm(); got != tt.alg {
				t.Errorf("Algorithm() = %q, want %q", got, tt.alg)
			}
			if tt.wantPub != nil {
				if eq, ok := s.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tt.wantPub) {
					t.Errorf("Public() = %T, not the key in the PEM", s.Public())
				}
			}
			wantPEM := encodePEM("PUBLIC KEY", mustDER(t)(x509.MarshalPKIXPublicKey(s.Public())))
			if got := s.PublicKeyPEM(); !bytes.Equal(got, wantPEM) {
				t.Errorf("PublicKeyPEM() = %s, want %s", got, wantPEM)
			}
		})
	}
}

func TestParsePrivateKeyPEMRejects(t *testing.T) {
	der := mustDER(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	big, err := rsa.GenerateKey(rand.Reader, 4104)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := rawKey(t, RSA2048).(*rsa.PrivateKey)
	ecKey := rawKey(t, ECDSAP256).(*ecdsa.PrivateKey)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	legacyEncrypted := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   pkcs1,
	})

	tests := []struct {
		name    string
		pem     []byte
		wantErr string
	}{
		{"empty", nil, "no PEM-encoded private key"},
		{"not pem", []byte("this is not a key"), "no PEM-encoded private key"},
		{"only ec parameters", encodePEM("EC PARAMETERS", []byte{6, 8, 42}), "no PEM-encoded private key"},
		{"public key", encodePEM("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))), `found a "PUBLIC KEY" PEM block; need a private key`},
		{"certificate", encodePEM("CERTIFICATE", []byte{0x30, 0}), `found a "CERTIFICATE" PEM block`},
		{"rsa 1024 pkcs1", encodePEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "rsa key is 1024 bits; need 2048 to 4096"},
		{"rsa 1024 pkcs8", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(small))), "rsa key is 1024 bits; need 2048 to 4096"},
		{"rsa 4104", encodePEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(big)), "rsa key is 4104 bits; need 2048 to 4096"},
		{"p384 sec1", encodePEM("EC PRIVATE KEY", der(x509.MarshalECPrivateKey(p384))), "ecdsa curve P-384 is not supported; only P-256"},
		{"p384 pkcs8", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(p384))), "ecdsa curve P-384 is not supported"},
		{"p521 pkcs8", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(p521))), "ecdsa curve P-521 is not supported"},
		{"ed25519", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(edKey))), "ed25519 keys are not supported"},
		{"x25519", encodePEM("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(xKey))), "x25519 keys are not supported"},
		{"legacy encrypted", legacyEncrypted, "encrypted private keys are not supported"},
		{"pkcs8 encrypted", encodePEM("ENCRYPTED PRIVATE KEY", pkcs1), "encrypted private keys are not supported"},
		{"corrupt der", encodePEM("RSA PRIVATE KEY", pkcs1[:len(pkcs1)/2]), "parsing RSA PRIVATE KEY block"},
		{"ec key in rsa block", encodePEM("RSA PRIVATE KEY", der(x509.MarshalECPrivateKey(ecKey))), "parsing RSA PRIVATE KEY block"},
		{"rsa key in ec block", encodePEM("EC PRIVATE KEY", pkcs1), "parsing EC PRIVATE KEY block"},
		{"garbage pkcs8", encodePEM("PRIVATE KEY", []byte("garbage garbage garbage")), "parsing PRIVATE KEY block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParsePrivateKeyPEM(tt.pem)
			if err == nil {
				t.Fatalf("ParsePrivateKeyPEM succeeded (%s), want error containing %q", s.Algorithm(), tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not contain %q", msg, tt.wantErr)
			}
			if r, _ := utf8.DecodeRuneInString(msg); unicode.IsUpper(r) {
				t.Errorf("error %q starts with a capital letter", msg)
			}
			assertNoKeyMaterial(t, msg, tt.pem)
		})
	}
}

// assertNoKeyMaterial fails if msg contains any 12-character run of the
// base64 text or hex of the decoded bytes of the PEM blocks in pemBytes.
func assertNoKeyMaterial(t *testing.T, msg string, pemBytes []byte) {
	t.Helper()
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return
		}
		b64 := base64.StdEncoding.EncodeToString(block.Bytes)
		hexs := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(string(hexDump(block.Bytes))), " ", ""))
		low := strings.ToLower(strings.ReplaceAll(msg, " ", ""))
		const n = 12
		for i := 0; i+n <= len(b64); i++ {
			if strings.Contains(msg, b64[i:i+n]) {
				t.Fatalf("error %q contains base64 key material %q", msg, b64[i:i+n])
			}
		}
		for i := 0; i+n <= len(hexs); i += 2 {
			if strings.Contains(low, hexs[i:i+n]) {
				t.Fatalf("error %q contains hex key material %q", msg, hexs[i:i+n])
			}
		}
	}
}

func hexDump(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return out
}

func TestSignVerifyRoundTrip(t *testing.T) {
	body := []byte(`{"license_key":"ABCD-EFGH","valid":true}`)
	wantAlg := map[KeyType]string{RSA2048: "RSA-2048", RSA3072: "RSA-3072", RSA4096: "RSA-4096", ECDSAP256: "ECDSA-P256"}
	for _, kt := range allKeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			s := testSigner(t, kt)
			if got := s.Algorithm(); got != wantAlg[kt] {
				t.Errorf("Algorithm() = %q, want %q", got, wantAlg[kt])
			}
			sigB64, err := s.Sign(body)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			sig, err := base64.StdEncoding.DecodeString(sigB64)
			if err != nil {
				t.Fatalf("signature %q is not standard base64: %v", sigB64, err)
			}
			if base64.StdEncoding.EncodeToString(sig) != sigB64 {
				t.Errorf("signature %q is not canonical padded base64", sigB64)
			}
			switch pub := s.Public().(type) {
			case *rsa.PublicKey:
				if len(sig) != pub.Size() {
					t.Errorf("rsa signature is %d bytes, want %d", len(sig), pub.Size())
				}
			case *ecdsa.PublicKey:
				if len(sig) < 8 || sig[0] != 0x30 || int(sig[1]) != len(sig)-2 {
					t.Errorf("ecdsa signature % x is not an ASN.1 DER SEQUENCE", sig)
				}
			default:
				t.Fatalf("Public() = %T", pub)
			}
			if err := Verify(s.PublicKeyPEM(), body, sigB64); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// TestECDSAIsRFC6979 checks ECDSA signing against the P-256/SHA-256 vector
// of RFC 6979 (appendix A.2.5, message "sample"): a deterministic nonce,
// not merely a valid signature.
func TestECDSAIsRFC6979(t *testing.T) {
	hexInt := func(h string) *big.Int {
		n, ok := new(big.Int).SetString(h, 16)
		if !ok {
			t.Fatalf("bad hex %q", h)
		}
		return n
	}
	d := hexInt("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
	wantR := hexInt("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716")
	wantS := hexInt("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the same answer each time
		sigB64, err := s.Sign([]byte("sample"))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.StdEncoding.DecodeString(sigB64)
		if err != nil {
			t.Fatal(err)
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
			t.Fatalf("signature % x: %v, %d bytes left", sig, err, len(rest))
		}
		if rs.R.Cmp(wantR) != 0 || rs.S.Cmp(wantS) != 0 {
			t.Errorf("(r, s) = (%X, %X), want RFC 6979's (%X, %X)", rs.R, rs.S, wantR, wantS)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	body := []byte(`{"valid":true}`)
	for _, kt := range []KeyType{RSA2048, ECDSAP256} {
		t.Run(string(kt), func(t *testing.T) {
			s := testSigner(t, kt)
			// Another key of the same kind, so only the key differs.
			otherPEM := testKeyPEM(t, RSA3072)
			if kt == ECDSAP256 {
				var err error
				if otherPEM, err = GenerateKeyPEM(ECDSAP256); err != nil {
					t.Fatal(err)
				}
			}
			other, err := ParsePrivateKeyPEM(otherPEM)
			if err != nil {
				t.Fatal(err)
			}
			sigB64, err := s.Sign(body)
			if err != nil {
				t.Fatal(err)
			}
			sig, _ := base64.StdEncoding.DecodeString(sigB64)
			flipped := bytes.Clone(sig)
			flipped[len(flipped)/2] ^= 0x01

			mismatch := []struct {
				name string
				pub  []byte
				body []byte
				sig  string
			}{
				{"tampered body", s.PublicKeyPEM(), []byte(`{"valid":false}`), sigB64},
				{"body with added space", s.PublicKeyPEM(), []byte(`{"valid": true}`), sigB64},
				{"tampered signature", s.PublicKeyPEM(), body, base64.StdEncoding.EncodeToString(flipped)},
				{"truncated signature", s.PublicKeyPEM(), body, base64.StdEncoding.EncodeToString(sig[:len(sig)-1])},
				{"empty signature", s.PublicKeyPEM(), body, ""},
				{"other key", other.PublicKeyPEM(), body, sigB64},
				{"other rsa key as pkcs1", encodePEM("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&testSigner(t, RSA4096).rsa.PublicKey)), body, sigB64},
			}
			for _, tt := range mismatch {
				if err := Verify(tt.pub, tt.body, tt.sig); !errors.Is(err, ErrSignatureMismatch) {
					t.Errorf("%s: Verify = %v, want ErrSignatureMismatch", tt.name, err)
				}
			}

			malformed := []struct {
				name, wantErr string
				pub           []byte
				sig           string
			}{
				{"not base64", "not standard base64", s.PublicKeyPEM(), "!!!" + sigB64},
				{"url-safe base64", "not standard base64", s.PublicKeyPEM(), strings.NewReplacer("+", "-", "/", "_").Replace(sigB64) + "-_"},
				{"no public key", "no PEM-encoded public key", []byte("nope"), sigB64},
				{"private key as public", `found a "PRIVATE KEY" PEM block; need a PUBLIC KEY`, testKeyPEM(t, kt), sigB64},
				{"corrupt public key", "parsing PUBLIC KEY block", encodePEM("PUBLIC KEY", []byte{0x30, 0x03, 1, 2, 3}), sigB64},
			}
			for _, tt := range malformed {
				err := Verify(tt.pub, body, tt.sig)
				if err == nil || errors.Is(err, ErrSignatureMismatch) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%s: Verify = %v, want a non-mismatch error containing %q", tt.name, err, tt.wantErr)
				}
			}
		})
	}
}

// TestVerifyAcceptsPKCS1PublicKey covers the "RSA PUBLIC KEY" form that
// older tools write.
func TestVerifyAcceptsPKCS1PublicKey(t *testing.T) {
	s := testSigner(t, RSA2048)
	body := []byte(`{"ok":true}`)
	sig, err := s.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	pub := encodePEM("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(s.Public().(*rsa.PublicKey)))
	if err := Verify(pub, body, sig); err != nil {
		t.Errorf("Verify with PKCS #1 public key: %v", err)
	}
}

func TestVerifyRejectsUnsupportedPublicKeys(t *testing.T) {
	der := mustDER(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, wantErr string
		pub           any
	}{
		{"p384", "ecdsa curve P-384 is not supported", &p384.PublicKey},
		{"ed25519", "ed25519 public keys are not supported", edPub},
		{"rsa 1024", "rsa public key is 1024 bits", &small.PublicKey},
	}
	for _, tt := range tests {
		err := Verify(encodePEM("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(tt.pub))), []byte("{}"), "AAAA")
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Verify = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestPublicKeyPEMIsACopy(t *testing.T) {
	s := testSigner(t, ECDSAP256)
	p := s.PublicKeyPEM()
	want := bytes.Clone(p)
	clear(p)
	if got := s.PublicKeyPEM(); !bytes.Equal(got, want) {
		t.Errorf("PublicKeyPEM changed after modifying a returned copy")
	}
}

func TestSignConcurrent(t *testing.T) {
	for _, kt := range []KeyType{RSA2048, ECDSAP256} {
		t.Run(string(kt), func(t *testing.T) {
			s := testSigner(t, kt)
			pub := s.PublicKeyPEM()
			const workers, perWorker = 8, 10
			errs := make(chan error, workers*perWorker)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						body := jsonjs.AppendInt([]byte(`{"n":`), int64(w*perWorker+i))
						body = append(body, '}')
						sig, err := s.Sign(body)
						if err == nil {
							err = Verify(pub, body, sig)
						}
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			n := 0
			for err := range errs {
				n++
				if err != nil {
					t.Error(err)
				}
			}
			if n != workers*perWorker {
				t.Errorf("got %d results, want %d", n, workers*perWorker)
			}
		})
	}
}

// signingBody is a body of the kind the SDK sends to the server, built with
// jsonjs, including text that encoding/json would escape differently.
func signingBody() []byte {
	b := []byte(`{"license_key":`)
	b = jsonjs.AppendString(b, "ÄBÇD-<>&-\u2028-\u2029-日本語-😀-e\u0301")
	b = append(b, `,"product_details":{"product_name":`...)
	b = jsonjs.AppendString(b, "Prodüct \"Pro\" </script>\n\t\x01")
	b = append(b, `},"is_valid":`...)
	b = jsonjs.AppendBool(b, true)
	b = append(b, `,"max_activations":`...)
	b = jsonjs.AppendInt(b, 1<<53-1)
	b = append(b, `,"validity_period":`...)
	b = jsonjs.AppendTime(b, time.Date(2030, 6, 15, 12, 0, 0, 123_000_000, time.UTC))
	return append(b, '}')
}

// TestNodeVerifies proves that the official SDK's check, run by real
// node:crypto, accepts our signatures for every key type.
func TestNodeVerifies(t *testing.T) {
	nodetest.Node(t) // skip before generating keys
	body := signingBody()

	type nodeCase struct {
		Name       string `json:"name"`
		Pub        string `json:"pub"`
		Body       string `json:"body"` // base64 of the body bytes
		Sig        string `json:"sig"`
		WantVerify bool   `json:"wantVerify"`
	}
	var cases []nodeCase
	for _, kt := range allKeyTypes {
		s := testSigner(t, kt)
		sig, err := s.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		other, err := s.Sign(append(bytes.Clone(body[:len(body)-1]), ',', '"', 'x', '"', ':', '1', '}'))
		if err != nil {
			t.Fatal(err)
		}
		b64 := base64.StdEncoding.EncodeToString(body)
		cases = append(cases,
			nodeCase{Name: s.Algorithm(), Pub: string(s.PublicKeyPEM()), Body: b64, Sig: sig, WantVerify: true},
			nodeCase{Name: s.Algorithm() + " signature of another body", Pub: string(s.PublicKeyPEM()), Body: b64, Sig: other, WantVerify: false},
		)
	}

	// The verify line is the SDK's, verbatim apart from variable names.
	const script = `
const cases = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
const results = cases.map((c) => {
  const received = Buffer.from(c.body, 'base64').toString('utf8');
  const body = JSON.stringify(JSON.parse(received));
  const publicKeyPEM = c.pub;
  const sig = c.sig;
  const verified = require('node:crypto').createVerify('RSA-SHA256').update(body).verify(publicKeyPEM, sig, 'base64');
  return { name: c.name, canonical: body === received, verified };
});
process.stdout.write(JSON.stringify(results));
`
	var results []struct {
		Name      string `json:"name"`
		Canonical bool   `json:"canonical"`
		Verified  bool   `json:"verified"`
	}
	nodetest.RunJSON(t, script, cases, &results)
	if len(results) != len(cases) {
		t.Fatalf("node returned %d results, want %d", len(results), len(cases))
	}
	for i, r := range results {
		if !r.Canonical {
			t.Errorf("%s: JSON.stringify(JSON.parse(body)) differs from body %s", r.Name, body)
		}
		if r.Verified != cases[i].WantVerify {
			t.Errorf("%s: node verify = %v, want %v", r.Name, r.Verified, cases[i].WantVerify)
		}
	}
}

func benchmarkBody() []byte {
	return []byte(`{"license_key":"ABCD-EFGH-IJKL-MNOP","license_type":"perpetual","is_trial":false,"is_active":true,"is_enabled":true,"is_expired":false,"max_activations":5,"times_activated":1,"transfer_count":0,"validity_period":"2030-01-01T00:00:00.000Z","product_details":{"product_id":42,"product_name":"Example Product","short_code":"example","allow_trial":true,"trial_days":14},"customer":{"email":"user@example.com","first_name":"Ada","last_name":"Lovelace","company_name":"Analytical Engines"},"product_features":[],"custom_fields":[]}`)
}

func benchmarkSign(b *testing.B, kt KeyType) {
	s := testSigner(b, kt)
	body := benchmarkBody()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := s.Sign(body); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkSignParallel(b *testing.B, kt KeyType) {
	s := testSigner(b, kt)
	body := benchmarkBody()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSignRSA2048(b *testing.B)           { benchmarkSign(b, RSA2048) }
func BenchmarkSignRSA2048Parallel(b *testing.B)   { benchmarkSignParallel(b, RSA2048) }
func BenchmarkSignECDSAP256(b *testing.B)         { benchmarkSign(b, ECDSAP256) }
func BenchmarkSignECDSAP256Parallel(b *testing.B) { benchmarkSignParallel(b, ECDSAP256) }
