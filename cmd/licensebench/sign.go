package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgelicense/caddy-license-api/signing"
)

// processCPU returns this process's user+system CPU time.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// signingSample is a number of signatures and the time they took.
type signingSample struct {
	count     int64
	cpu, wall time.Duration
}

func (s signingSample) add(o signingSample) signingSample {
	return signingSample{s.count + o.count, s.cpu + o.cpu, s.wall + o.wall}
}

// cpuPerSignatureUs is the process's CPU time per signature, in µs.
func (s signingSample) cpuPerSignatureUs() float64 {
	return float64(s.cpu.Nanoseconds()) / float64(s.count) / 1e3
}

// signFor signs body with signer on GOMAXPROCS goroutines for d, through
// the server's own signing code. Nothing else runs in the benchmark
// meanwhile, so the process's CPU time is the signing's.
func signFor(ctx context.Context, signer *signing.Signer, body []byte, d time.Duration) (signingSample, error) {
	if _, err := signer.Sign(body); err != nil { // and build any lazy tables
		return signingSample{}, err
	}
	var (
		count    atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	cpu0, err := processCPU()
	if err != nil {
		return signingSample{}, err
	}
	t0 := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for !stop.Load() {
				if _, err := signer.Sign(body); err != nil {
					errOnce.Do(func() { firstErr = err })
					break
				}
				n++
			}
			count.Add(n)
		}()
	}
	sleepErr := sleep(ctx, nil, d)
	stop.Store(true)
	wg.Wait()
	wall := time.Since(t0)
	cpu1, err := processCPU()
	switch {
	case err != nil:
		return signingSample{}, err
	case sleepErr != nil:
		return signingSample{}, sleepErr
	case firstErr != nil:
		return signingSample{}, firstErr
	case count.Load() == 0:
		return signingSample{}, fmt.Errorf("%s: no signature in %s", signer.Algorithm(), d)
	}
	return signingSample{count.Load(), cpu1 - cpu0, wall}, nil
}

// measureSigning is the raw signing phase for one key type: a fresh key of
// type kt signs a realistic response body on all cores for d.
func measureSigning(ctx context.Context, kt signing.KeyType, d time.Duration) (SignResult, error) {
	pemBytes, err := signing.GenerateKeyPEM(kt)
	if err != nil {
		return SignResult{}, err
	}
	signer, err := signing.ParsePrivateKeyPEM(pemBytes)
	if err != nil {
		return SignResult{}, err
	}
	body := sampleResponse()
	s, err := signFor(ctx, signer, body, d)
	if err != nil {
		return SignResult{}, err
	}
	return SignResult{
		KeyType:           string(kt),
		Algorithm:         signer.Algorithm(),
		Goroutines:        runtime.GOMAXPROCS(0),
		BodyBytes:         len(body),
		Signatures:        s.count,
		Seconds:           s.wall.Seconds(),
		PerSecond:         float64(s.count) / s.wall.Seconds(),
		CPUPerSignatureUs: s.cpuPerSignatureUs(),
	}, nil
}
