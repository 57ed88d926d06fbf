package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/signing"
)

// The product and feature every generated license uses. The feature allows
// unlimited consumptions, so no run can exhaust it and every request of a
// working server is answered 200.
const (
	benchProduct = "bench"
	benchFeature = "calls"
)

// licenseKey and hardwareID name license i and its only device; the seed and
// the request bodies must agree on them.
func licenseKey(i int) string { return fmt.Sprintf("BENCH-%08d", i) }
func hardwareID(i int) string { return fmt.Sprintf("hw-%08d", i) }

// writeSeed writes a seed file of n key-based licenses of benchProduct, each
// with one active device and the benchFeature consumption feature. Ids are
// left to the store: licenses are matched by (product, key), so importing the
// file into a database that already holds them (a shared PostgreSQL) is an
// idempotent upsert.
func writeSeed(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	fmt.Fprintf(w, `{"products":[{"short_code":%q,"name":"Benchmark","authorization_method":"license-key",`+
		`"features":[{"code":%q,"name":"API calls","feature_type":"consumption",`+
		`"allow_unlimited_consumptions":true,"allow_negative_consumptions":false}]}],`+"\n"+`"licenses":[`,
		benchProduct, benchFeature)
	for i := range n {
		if i > 0 {
			w.WriteString(",\n")
		}
		fmt.Fprintf(w, `{"product":%q,"license_key":%q,"features":[{"code":%q}],"devices":[{"hardware_id":%q}]}`,
			benchProduct, licenseKey(i), benchFeature, hardwareID(i))
	}
	w.WriteString("]}\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// requestBodies returns the add_feature_consumption body of each of n
// licenses, built once so that the load generator only picks one. They share
// one backing array, which keeps 100,000 bodies compact.
func requestBodies(n int) [][]byte {
	const approxLen = 140
	buf := make([]byte, 0, n*approxLen)
	bodies := make([][]byte, n)
	for i := range bodies {
		start := len(buf)
		buf = fmt.Appendf(buf, `{"hardware_id":%q,"product":%q,"feature":%q,"license_key":%q,"consumptions":1,"sdk_ver":"licensebench"}`,
			hardwareID(i), benchProduct, benchFeature, licenseKey(i))
		bodies[i] = buf[start:len(buf):len(buf)]
	}
	return bodies
}

// sampleResponse is a realistic add_feature_consumption answer (about 300
// bytes), made by the server's own writer: what the server signs per request.
func sampleResponse() []byte {
	return consumption.AppendFeatureConsumptionJSON(nil, 276, &consumption.FeatureOutcome{
		Feature: consumption.LicenseFeature{
			ID: 5_000_123, LicenseID: 1_000_123, Code: benchFeature, Type: consumption.ConsumptionFeature,
			Settings: consumption.Settings{MaxConsumption: 1_000_000, AllowOverages: true, MaxOverages: 1000},
		},
		Total:   123_456,
		Applied: 1,
	})
}

// writeKeyPair writes a fresh signing key of type kt, and its public key,
// into dir, and returns the key's path and a signer with that key.
func writeKeyPair(dir string, kt signing.KeyType) (string, *signing.Signer, error) {
	keyPath := filepath.Join(dir, "signing_key.pem")
	if err := signing.WriteKeyPair(kt, keyPath, keyPath+".pub"); err != nil {
		return "", nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return "", nil, err
	}
	signer, err := signing.ParsePrivateKeyPEM(keyPEM)
	return keyPath, signer, err
}
