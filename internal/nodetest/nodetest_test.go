package nodetest

import (
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
