// Package nodetest is test support for checks that run real Node.js.
//
// The LicenseSpring SDKs that talk to this server are JavaScript, so the
// properties that matter most (byte-exact JSON round trips, signature
// verification with node:crypto) are best proven by running node itself.
// Developers without node get a skip; CI, which must prove them, fails.
package nodetest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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

// RunScript runs the JavaScript program script with node (see Node) and
// returns what it wrote to stdout.
//
// The script and input are written to files in a temporary directory and run
// as `node script.js input`, so the script reads its input from the file
// named by process.argv[2], e.g. fs.readFileSync(process.argv[2], 'utf8').
// (Passing a file rather than using stdin keeps synchronous reads of large
// inputs reliable on every platform, and a script file gives node's stack
// traces line numbers.) Stdin is empty.
//
// The test is failed, with node's stderr, if node cannot be started or exits
// with a non-zero status, as an uncaught exception makes it do. Anything node
// writes to stderr on success is logged.
func RunScript(t testing.TB, script string, input []byte) []byte {
	t.Helper()
	node := Node(t)
	dir := t.TempDir()
	scriptPath := filepath.Join(dir, "script.js")
	inPath := filepath.Join(dir, "input")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, input, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(node, scriptPath, inPath)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Logf("node stderr:\n%s", stderr.Bytes())
	}
	return stdout.Bytes()
}

// RunJSON is RunScript for the usual exchange of JSON: it encodes in as the
// script's input, runs the script, and decodes what it writes to stdout into
// out, which must be a pointer. The test is failed if in cannot be encoded or
// the output does not decode; the failure quotes the start of the output.
//
// A script typically begins
//
//	const cases = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
//
// and ends with process.stdout.write(JSON.stringify(results)).
func RunJSON(t testing.TB, script string, in, out any) {
	t.Helper()
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("encoding node input: %v", err)
	}
	output := RunScript(t, script, input)
	if err := json.Unmarshal(output, out); err != nil {
		const limit = 1 << 10
		quoted := output
		if len(quoted) > limit {
			quoted = quoted[:limit]
		}
		t.Fatalf("decoding node output (%d bytes, starting %q): %v", len(output), quoted, err)
	}
}
