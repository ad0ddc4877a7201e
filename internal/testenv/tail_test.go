package testenv

import "testing"

func TestTailWriter(t *testing.T) {
	w := &tailWriter{max: 8}
	for _, s := range []string{"abc", "defgh", "ijk", ""} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := w.String(); got != "defghijk" {
		t.Errorf("kept %q, want the last 8 bytes %q", got, "defghijk")
	}
}
