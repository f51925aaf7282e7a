// The compare binary's timer rows (timers_ticker, timers_ticker_fewest, timers_burst) in Go,
// for the figures BENCHMARKS.md quotes beside goexec and tokio. Same sizes as
// benches/src/timers.rs. Run by run.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	tickers    = 10_000
	tickPeriod = 10 * time.Millisecond
	tickRun    = 500 * time.Millisecond
	sleepers   = 50_000
	burstAfter = 300 * time.Millisecond
)

// ticker: tickers goroutines each receive from a Ticker for tickRun; the ticks in all and the
// fewest any goroutine got.
func ticker() (total, fewest uint64) {
	counts := make([]atomic.Uint64, tickers)
	end := time.Now().Add(tickRun)
	var wg sync.WaitGroup
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(tickPeriod)
			defer t.Stop()
			for {
				<-t.C
				if !time.Now().Before(end) {
					return
				}
				counts[i].Add(1)
			}
		}()
	}
	wg.Wait()
	fewest = ^uint64(0)
	for i := range counts {
		c := counts[i].Load()
		total += c
		fewest = min(fewest, c)
	}
	return total, fewest
}

// burst: sleepers goroutines sleep until one instant; the p99 of how late they woke, in ms.
func burst() float64 {
	late := make([]int64, sleepers)
	due := time.Now().Add(burstAfter)
	var wg sync.WaitGroup
	for i := range late {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(due))
			late[i] = int64(time.Since(due))
		}()
	}
	wg.Wait()
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	i := (len(late)*99+99)/100 - 1
	return float64(late[i]) / 1e6
}

func summary(v []float64) string {
	sort.Float64s(v)
	return fmt.Sprintf("%.1f (%.1f–%.1f)", v[len(v)/2], v[0], v[len(v)-1])
}

func main() {
	procs := flag.Int("procs", 2, "GOMAXPROCS")
	rounds := flag.Int("rounds", 5, "samples per row")
	flag.Parse()
	if *procs < 1 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "timers: -procs and -rounds must be at least 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)
	ticker() // warm up, as the compare binary does
	var total, fewest, p99 []float64
	for r := 0; r < *rounds; r++ {
		t, f := ticker()
		total = append(total, float64(t))
		fewest = append(fewest, float64(f))
		p99 = append(p99, burst())
	}
	fmt.Printf("timers_ticker/%d: go %s ticks\n", *procs, summary(total))
	fmt.Printf("timers_ticker_fewest/%d: go %s ticks\n", *procs, summary(fewest))
	fmt.Printf("timers_burst/%d: go %s ms p99 late\n", *procs, summary(p99))
}
