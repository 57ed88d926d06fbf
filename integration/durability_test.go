package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// killSeed is one license with an unlimited feature, so that every
// consumption made before the kill is answered 200.
const killSeed = `{"products": [{"short_code": "cad", "features": [{"code": "calls", "name": "Calls",
	"feature_type": "consumption", "allow_unlimited_consumptions": true}]}],
 "licenses": [{"id": 7001, "product": "cad", "license_key": "KEY-KILL", "features": [{"code": "calls", "id": 7101}],
	"devices": [{"hardware_id": "hw-1"}]}]}`

// TestAcknowledgedSurviveKill kills Caddy outright (SIGKILL: no shutdown,
// nothing flushed) while consumptions are in flight, and checks that every
// consumption answered 200 is in the ledger and the counter after the
// database is opened again: an answer comes only after its commit.
func TestAcknowledgedSurviveKill(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seed, []byte(killSeed), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nodeConfig{seed: seed})
	req := signedRequest{endpoint: "add_feature_consumption",
		body: body(map[string]any{"license_key": "KEY-KILL", "feature": "calls"})}

	const workers, killAfter = 16, 300
	var mu sync.Mutex
	var acked []int64 // the totals answered 200
	killed := make(chan struct{})
	var kill sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				r, err := n.send(req)
				if err != nil {
					select {
					case <-killed:
						return // the kill cut this request off
					default:
						t.Errorf("before the kill: %v", err)
						return
					}
				}
				if r.status != 200 {
					t.Errorf("HTTP %d %s", r.status, r.body)
					return
				}
				var out struct {
					Total int64 `json:"total_consumptions"`
				}
				if err := json.Unmarshal(r.body, &out); err != nil {
					t.Errorf("%s: %v", r.body, err)
					return
				}
				mu.Lock()
				acked = append(acked, out.Total)
				if len(acked) == killAfter {
					kill.Do(func() {
						close(killed)
						n.cmd.Process.Signal(syscall.SIGKILL)
					})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-n.exited

	// A read-write open, unlike node.query's, recovers the write-ahead
	// log the killed process left.
	db, err := sql.Open("sqlite", "file:"+n.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var total, rows int64
	if err := db.QueryRowContext(context.Background(), `SELECT total FROM feature_counters WHERE id = 7101`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM consumption_ledger WHERE license_feature_id = 7101`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if len(acked) < killAfter || total < int64(len(acked)) || rows != total {
		t.Errorf("%d consumptions answered 200; after the kill the counter is %d with %d ledger rows", len(acked), total, rows)
	}
	for _, a := range acked {
		var found int64
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM consumption_ledger
			WHERE license_feature_id = 7101 AND total = ?`, a).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found != 1 {
			t.Errorf("the consumption answered with total %d has %d ledger rows, want 1", a, found)
		}
	}
}
