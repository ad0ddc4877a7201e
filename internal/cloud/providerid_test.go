package cloud

import "testing"

func TestInstanceID(t *testing.T) {
	tests := map[string]struct {
		providerID, want string
		wantErr          bool
	}{
		"with zone":          {providerID: "aws:///us-west-2a/i-0123456789abcdef0", want: "i-0123456789abcdef0"},
		"without zone":       {providerID: "aws:///i-0abc", want: "i-0abc"},
		"not AWS":            {providerID: "gce://project/zone/vm-1", wantErr: true},
		"empty":              {providerID: "", wantErr: true},
		"no instance":        {providerID: "aws:///us-west-2a/", wantErr: true},
		"not an instance id": {providerID: "aws:///us-west-2a/vm-1", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := InstanceID(tc.providerID)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("InstanceID(%q) = %q, %v; want %q, error %v", tc.providerID, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
