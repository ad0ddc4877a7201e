package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		"version":         {args: []string{"version"}, wantOut: "podsg dev\n"},
		"unknown command": {args: []string{"frobnicate"}, wantCode: 1, wantErr: `unknown command "frobnicate"`},
		"extra argument":  {args: []string{"version", "x"}, wantCode: 1, wantErr: "unknown command"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Run(t.Context(), tc.args, &out, &errb); code != tc.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tc.wantCode, errb.String())
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.wantErr)
			}
		})
	}
}
