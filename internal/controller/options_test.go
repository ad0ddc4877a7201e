package controller

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLocalVPCEndpointOnlyAgainstTheLocalVPC: pods would send their role's signed requests to
// the URL, so it is refused on AWS and when it is not a URL.
func TestLocalVPCEndpointOnlyAgainstTheLocalVPC(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want string // "" for valid
	}{
		"not set, on AWS":        {Options{}, ""},
		"the local VPC's API":    {Options{EC2Endpoint: "http://127.0.0.1:8450", LocalVPCEndpoint: "http://169.254.169.254:8450"}, ""},
		"on AWS":                 {Options{LocalVPCEndpoint: "http://169.254.169.254:8450"}, "is for the local VPC only"},
		"no scheme":              {Options{EC2Endpoint: "http://127.0.0.1:8450", LocalVPCEndpoint: "169.254.169.254:8450"}, "want an http:// or https:// URL"},
		"a hostname per service": {Options{EC2Endpoint: "http://127.0.0.1:8450", LocalVPCEndpoint: "http://{service}.us-west-2.amazonaws.com"}, ""},
		"no host":                {Options{EC2Endpoint: "http://127.0.0.1:8450", LocalVPCEndpoint: "http://"}, "want an http:// or https:// URL"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestIdentityNamespaceSelector: the flag is kubectl's selector syntax (requirements sorted by
// key, as the apiserver's parser returns them); empty keeps EKS's
// default (nil: every namespace but the exempt ones); a malformed one stops the start with
// the flag's name.
func TestIdentityNamespaceSelector(t *testing.T) {
	tests := map[string]struct {
		flag string
		want *metav1.LabelSelector // nil with wantErr "" for the default
		err  string
	}{
		"empty: every namespace":   {flag: ""},
		"blank: every namespace":   {flag: "  "},
		"a label equal to a value": {flag: "podsg.io/pod-identity=enabled", want: &metav1.LabelSelector{MatchLabels: map[string]string{"podsg.io/pod-identity": "enabled"}}},
		"set-based": {flag: "team in (a,b),!legacy", want: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist},
			{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}},
		"malformed":      {flag: "team in a", err: "--identity-webhook-namespace-selector"},
		"an invalid key": {flag: "-bad=1", err: "want a label selector"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Options{IdentityNamespaceSelector: tc.flag}.identityNamespaces()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("identityNamespaces(%q) error = %v, want %q", tc.flag, err, tc.err)
			}
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Fatalf("identityNamespaces(%q) = %+v, want %+v", tc.flag, got, tc.want)
			}
			// Run checks it with the other flags, before it talks to the apiserver.
			if err := (Options{IdentityNamespaceSelector: tc.flag}).validate(); (err == nil) != (tc.err == "") {
				t.Fatalf("validate() with %q = %v, want an error: %v", tc.flag, err, tc.err != "")
			}
		})
	}
}

// TestPprofContentionNeedsPprofAddr: the sampling costs every blocking event something and is
// only read through /debug/pprof, so without an address serving it the start is refused.
func TestPprofContentionNeedsPprofAddr(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want string // "" for valid
	}{
		"off":                  {Options{}, ""},
		"off, pprof served":    {Options{PprofAddr: "127.0.0.1:6060"}, ""},
		"on, pprof served":     {Options{PprofAddr: "127.0.0.1:6060", PprofContention: true}, ""},
		"on, no pprof":         {Options{PprofContention: true}, "--pprof-addr is empty"},
		"on, pprof disabled 0": {Options{PprofAddr: "0", PprofContention: true}, "--pprof-addr is empty"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
