package controller

import (
	"strings"
	"testing"
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
