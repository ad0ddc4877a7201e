package controller_test

import (
	"math"
	"testing"
)

// TestHistogramQuantile: the size benchmark's p99 is PromQL's histogram_quantile over
// cumulative buckets: linear within the bucket the rank falls in, from 0 below the first.
func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	bounds := []float64{0.005, 0.025, 0.1, inf}
	tests := map[string]struct {
		q    float64
		cum  []float64
		want float64
	}{
		"all in the first bucket":         {0.99, []float64{100, 100, 100, 100}, 0.00495},
		"the rank at a bucket's top":      {0.5, []float64{50, 100, 100, 100}, 0.005},
		"halfway into the second bucket":  {0.99, []float64{98, 100, 100, 100}, 0.015},
		"in +Inf: the highest finite one": {0.99, []float64{10, 20, 30, 100}, 0.1},
		"an empty bucket is skipped":      {0.9, []float64{80, 80, 100, 100}, 0.0625},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := histogramQuantile(tc.q, bounds, tc.cum); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("histogramQuantile(%v, %v) = %v, want %v", tc.q, tc.cum, got, tc.want)
			}
		})
	}
}
