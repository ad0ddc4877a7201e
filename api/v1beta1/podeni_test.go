package v1beta1

import (
	"reflect"
	"strings"
	"testing"
)

func TestPodENIRoundTrip(t *testing.T) {
	in := []PodENI{{ENIID: "eni-0abc", IfAddress: "02:50:00:00:00:01", PrivateIP: "10.0.0.5", VLANID: 1,
		SubnetCIDR: "10.0.0.0/19", AssociationID: "trunk-assoc-1"}}
	got, err := MarshalPodENIs(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"eniId":"eni-0abc","ifAddress":"02:50:00:00:00:01","privateIp":"10.0.0.5","ipv6Addr":"","vlanId":1,` +
		`"subnetCidr":"10.0.0.0/19","subnetV6Cidr":"","associationID":"trunk-assoc-1"}]`
	if got != want {
		t.Fatalf("encoded\n %s\nwant\n %s", got, want)
	}
	back, err := ParsePodENIs(got)
	if err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
}

func TestParsePodENIs(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []PodENI
		wantErr bool
	}{
		// The seed walk-through's `kubectl describe pod`, written by AWS's controller in 2021.
		"AWS 2021 format, fewer fields": {in: `[{"eniId":"eni-054df22ad2b1b89c3","ifAddress":"02:3b:a8:a7:9c:f5","privateIp":"10.0.3.128","vlanId":1,"subnetCidr":"10.0.2.0/23"}]`,
			want: []PodENI{{ENIID: "eni-054df22ad2b1b89c3", IfAddress: "02:3b:a8:a7:9c:f5", PrivateIP: "10.0.3.128", VLANID: 1, SubnetCIDR: "10.0.2.0/23"}}},
		"two ENIs":   {in: `[{"eniId":"a","vlanId":1},{"eniId":"b","vlanId":2}]`, want: []PodENI{{ENIID: "a", VLANID: 1}, {ENIID: "b", VLANID: 2}}},
		"not a list": {in: `{"eniId":"a"}`, wantErr: true},
		"garbage":    {in: `eni-1`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePodENIs(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestPodENIValidate(t *testing.T) {
	good := PodENI{ENIID: "eni-054df22ad2b1b89c3", IfAddress: "02:3b:a8:a7:9c:f5", PrivateIP: "10.0.3.128", VLANID: 1, SubnetCIDR: "10.0.2.0/23"}
	tests := map[string]struct {
		mutate func(*PodENI)
		want   []string
	}{
		"valid":              {func(*PodENI) {}, nil},
		"everything missing": {func(e *PodENI) { *e = PodENI{} }, []string{"eniId", "ifAddress", "vlanId 0", "privateIp", "subnetCidr"}},
		"ip outside subnet":  {func(e *PodENI) { e.PrivateIP = "10.9.0.1" }, []string{"outside subnetCidr 10.0.2.0/23"}},
		"vlan too big":       {func(e *PodENI) { e.VLANID = 4095 }, []string{"vlanId 4095"}},
		"ipv6 only":          {func(e *PodENI) { e.PrivateIP = "fd00::1" }, []string{"not an IPv4 address"}},
		"8-byte MAC":         {func(e *PodENI) { e.IfAddress = "02:3b:a8:a7:9c:f5:00:01" }, []string{"not a 48-bit MAC address"}},
		"20-byte MAC": {func(e *PodENI) { e.IfAddress = "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01" },
			[]string{"not a 48-bit MAC address"}},
		"/0 subnet":     {func(e *PodENI) { e.SubnetCIDR = "0.0.0.0/0" }, []string{"subnetCidr 0.0.0.0/0 is not a VPC subnet"}},
		"/8 subnet":     {func(e *PodENI) { e.SubnetCIDR = "10.0.0.0/8" }, []string{"not a VPC subnet"}},
		"/32 subnet":    {func(e *PodENI) { e.SubnetCIDR = "10.0.3.128/32" }, []string{"not a VPC subnet"}},
		"/16 subnet":    {func(e *PodENI) { e.SubnetCIDR = "10.0.0.0/16" }, nil},
		"/28 subnet":    {func(e *PodENI) { e.SubnetCIDR = "10.0.3.128/28" }, nil},
		"uppercase MAC": {func(e *PodENI) { e.IfAddress = "02:3B:A8:A7:9C:F5" }, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := good
			tc.mutate(&e)
			err := e.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}
