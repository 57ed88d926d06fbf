// Package nodetest is test support for checks that run real Node.js.
//
// The LicenseSpring SDKs that talk to this server are JavaScript, so the
// properties that matter most (byte-exact JSON round trips, signature
// verification with node:crypto) are best proven by running node itself.
// Developers without node get a skip; CI, which must prove them, fails.
package nodetest

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// Node returns the path of the node executable found on PATH.
//
// If node is missing the test is failed when the environment variable CI is
// true (any value strconv.ParseBool accepts as true, e.g. "true" or "1"), so a
// CI machine without node cannot pass silently; otherwise the test is skipped
// with a message saying how to run it.
func Node(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err == nil {
		return path
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("node not found on PATH (%v); it is required when CI=true because this test proves compatibility with the JavaScript SDK", err)
	}
	t.Skipf("skipping: node not found on PATH (%v); install Node.js to run this JavaScript compatibility check (it is mandatory when CI=true)", err)
	return ""
}
