package e2e

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// The comparison benchmarks measure paths in interleaved rounds: in every
// round each path runs a block of operations, timed one by one, in an order
// that alternates from round to round, so that a slow spell of the machine
// (two cores shared with other work) falls on both sides of a ratio. A ratio
// is taken within each round (p50 against p50, p90 against p90) and reported
// as its median over the rounds with the lowest and highest round beside it.

// benchRounds and benchOps are the rounds and the operations per path and
// round; BENCH_ROUNDS and BENCH_OPS override them (BENCH_OPS scales every
// path's block relative to 100).
var (
	benchRounds = envInt("BENCH_ROUNDS", 7)
	benchScale  = envInt("BENCH_OPS", 100)
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// timedPath is one way of doing an operation.
type timedPath struct {
	name string
	ops  int // per round, at BENCH_OPS=100
	op   func() error
}

// quantiles are one path's p50 and p90 in one round.
type quantiles struct{ p50, p90 time.Duration }

// measure runs rounds of paths and returns quantiles[path][round]. Each path
// first runs a tenth of its block untimed, to warm its caches.
func measure(b *testing.B, paths []timedPath) [][]quantiles {
	b.Helper()
	return measurePaced(b, 0, paths)
}

// measurePaced is measure with a pause (untimed) before every timed
// operation, in which the processes of the path go idle, as between two
// sign-ins.
func measurePaced(b *testing.B, pause time.Duration, paths []timedPath) [][]quantiles {
	b.Helper()
	out := make([][]quantiles, len(paths))
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	for i, p := range paths {
		for range max(1, p.ops*benchScale/1000) {
			if err := p.op(); err != nil {
				b.Fatalf("%s (warm-up): %v", paths[i].name, err)
			}
		}
	}
	for range benchRounds {
		for _, i := range order {
			p := paths[i]
			n := max(5, p.ops*benchScale/100)
			samples := make([]time.Duration, n)
			for k := range samples {
				if pause > 0 {
					time.Sleep(pause)
				}
				t0 := time.Now()
				if err := p.op(); err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				samples[k] = time.Since(t0)
			}
			out[i] = append(out[i], quantilesOf(samples))
		}
		slices.Reverse(order)
	}
	return out
}

// quantilesOf sorts samples and returns their p50 and p90.
func quantilesOf(samples []time.Duration) quantiles {
	return quantiles{percentile(samples, 50), percentile(samples, 90)}
}

// percentile sorts samples and returns the nearest-rank p-th percentile.
func percentile(samples []time.Duration, p int) time.Duration {
	slices.Sort(samples)
	i := (len(samples)*p + 99) / 100
	return samples[max(0, min(len(samples)-1, i-1))]
}

// spread is a value over rounds: its median, lowest and highest.
type spread struct{ med, lo, hi float64 }

func spreadOf(v []float64) spread {
	s := slices.Clone(v)
	slices.Sort(s)
	return spread{s[len(s)/2], s[0], s[len(s)-1]}
}

// ratios divides num by den round by round.
func ratios(num, den []quantiles) (p50, p90 spread) {
	var r50, r90 []float64
	for i := range num {
		r50 = append(r50, float64(num[i].p50)/float64(den[i].p50))
		r90 = append(r90, float64(num[i].p90)/float64(den[i].p90))
	}
	return spreadOf(r50), spreadOf(r90)
}

// medianOf is the median over rounds of one quantile of a path.
func medianOf(q []quantiles, pick func(quantiles) time.Duration) time.Duration {
	v := make([]float64, len(q))
	for i := range q {
		v[i] = float64(pick(q[i]))
	}
	return time.Duration(spreadOf(v).med)
}

func p50(q quantiles) time.Duration { return q.p50 }

// benchOut is where the tables go: standard output, which go test passes
// through and scripts/bench.sh collects.
var benchOut io.Writer = os.Stdout

// printRatio prints one row of the comparison table: both sides' median p50
// and the p50 and p90 ratios with their spread over the rounds, and the
// target the issue sets.
func printRatio(label string, num, den []quantiles, target string) {
	r50, r90 := ratios(num, den)
	fmt.Fprintf(benchOut, "%-52s %10s %10s  p50 %5.2fx [%5.2f-%5.2f]  p90 %5.2fx [%5.2f-%5.2f]  target %s\n",
		label, dur(medianOf(num, p50)), dur(medianOf(den, p50)),
		r50.med, r50.lo, r50.hi, r90.med, r90.lo, r90.hi, target)
}

// printValue prints one measured value with its target.
func printValue(label, value, target string) {
	fmt.Fprintf(benchOut, "%-52s %22s  target %s\n", label, value, target)
}

// dur prints a duration in µs or ms with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func TestPercentileAndRatios(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	q := quantilesOf(ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5))
	if q.p50 != 5*time.Millisecond || q.p90 != 9*time.Millisecond {
		t.Fatalf("quantiles of 1..10 ms = %v, want p50 5ms p90 9ms", q)
	}
	num := []quantiles{{2, 4}, {3, 9}, {8, 8}}
	den := []quantiles{{1, 2}, {1, 3}, {2, 4}}
	r50, r90 := ratios(num, den)
	if r50 != (spread{3, 2, 4}) || r90 != (spread{2, 2, 3}) {
		t.Fatalf("ratios: p50 %+v p90 %+v", r50, r90)
	}
}
