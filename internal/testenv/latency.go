package testenv

import (
	"slices"
	"testing"
	"time"
)

// ReportLatencies reports the median and 99th percentile of samples, in milliseconds, as the
// benchmark metrics "p50-<op>-ms" and "p99-<op>-ms".
func ReportLatencies(b *testing.B, op string, samples []time.Duration) {
	b.Helper()
	if len(samples) == 0 {
		return
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	pct := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return float64(s[max(i, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-"+op+"-ms")
	b.ReportMetric(pct(0.99), "p99-"+op+"-ms")
}
