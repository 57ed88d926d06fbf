package nodetest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestNodeFound(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a fake node needs a .exe on Windows; covered on other platforms")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "node")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if got := Node(t); got != fake {
		t.Errorf("Node() = %q, want %q", got, fake)
	}
}

// TestNodeMissing runs TestHelperNodeMissing in a child process with an
// empty PATH, because failing or skipping is observable only from outside.
func TestNodeMissing(t *testing.T) {
	tests := []struct {
		ci, want string
	}{
		{"true", "--- FAIL: TestHelperNodeMissing"},
		{"1", "--- FAIL: TestHelperNodeMissing"},
		{"", "--- SKIP: TestHelperNodeMissing"},
		{"false", "--- SKIP: TestHelperNodeMissing"},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNodeMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "NODETEST_HELPER=1", "PATH="+t.TempDir(), "CI="+tt.ci)
		out, _ := cmd.CombinedOutput() // the exit status is asserted via the output
		if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "node not found on PATH") {
			t.Errorf("CI=%q: output does not contain %q and the reason:\n%s", tt.ci, tt.want, out)
		}
	}
}

// TestHelperNodeMissing is run by TestNodeMissing; on its own it does
// nothing.
func TestHelperNodeMissing(t *testing.T) {
	if os.Getenv("NODETEST_HELPER") != "1" {
		t.Skip("helper for TestNodeMissing")
	}
	Node(t)
	t.Error("Node returned although node is not on PATH")
}

func TestRunScript(t *testing.T) {
	Node(t)
	// Non-ASCII and a NUL byte must reach the script and come back intact;
	// what goes to stderr must not end up in the result.
	input := []byte("héllo\x00 😀\n")
	const script = `
const input = require('node:fs').readFileSync(process.argv[2]);
process.stderr.write('diagnostic');
process.stdout.write(Buffer.concat([Buffer.from('got:'), input]));
`
	if got, want := RunScript(t, script, input), append([]byte("got:"), input...); !bytes.Equal(got, want) {
		t.Errorf("RunScript = %q, want %q", got, want)
	}
}

func TestRunJSON(t *testing.T) {
	Node(t)
	in := []struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}{{"a", 1}, {"ü\u2028", 21}}
	const script = `
const cases = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
process.stdout.write(JSON.stringify(cases.map((c) => ({ name: c.name + '!', double: c.n * 2 }))));
`
	var out []struct {
		Name   string `json:"name"`
		Double int    `json:"double"`
	}
	RunJSON(t, script, in, &out)
	if len(out) != 2 || out[0].Name != "a!" || out[0].Double != 2 || out[1].Name != "ü\u2028!" || out[1].Double != 42 {
		t.Errorf("RunJSON decoded %+v", out)
	}
}

// TestRunFails runs TestHelperRunFails in child processes, because only from
// outside can it be seen that RunScript and RunJSON fail the test, and why.
func TestRunFails(t *testing.T) {
	Node(t)
	tests := []struct {
		helper string
		want   []string
	}{
		// A non-zero exit fails the test and shows node's stderr.
		{"exit", []string{"--- FAIL: TestHelperRunFails", "node: exit status 3", "boom from stderr"}},
		// So does an uncaught exception, with node's stack trace.
		{"throw", []string{"--- FAIL: TestHelperRunFails", "Error: thrown on purpose", "script.js"}},
		// Output that is not JSON fails RunJSON and is quoted.
		{"json", []string{"--- FAIL: TestHelperRunFails", "decoding node output (8 bytes, starting \"not json\")"}},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRunFails$", "-test.v")
		cmd.Env = append(os.Environ(), "NODETEST_HELPER=run-"+tt.helper)
		out, _ := cmd.CombinedOutput() // the exit status is asserted via the output
		for _, want := range tt.want {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: output does not contain %q:\n%s", tt.helper, want, out)
			}
		}
		if strings.Contains(string(out), "the helper returned") {
			t.Errorf("%s: the helper went on after the failure:\n%s", tt.helper, out)
		}
	}
}

// TestHelperRunFails is run by TestRunFails; on its own it does nothing.
func TestHelperRunFails(t *testing.T) {
	switch os.Getenv("NODETEST_HELPER") {
	case "run-exit":
		RunScript(t, `process.stderr.write('boom from stderr'); process.exit(3);`, nil)
	case "run-throw":
		RunScript(t, `throw new Error('thrown on purpose');`, nil)
	case "run-json":
		var v any
		RunJSON(t, `process.stdout.write('not json');`, nil, &v)
	default:
		t.Skip("helper for TestRunFails")
	}
	t.Error("the helper returned")
}
