package branch

import (
	"reflect"
	"testing"
)

func TestAnnotationRoundTrip(t *testing.T) {
	in := []ENIDetails{{ENIID: "eni-0abc", IfAddress: "02:50:00:00:00:01", PrivateIP: "10.0.0.5", VLANID: 1,
		SubnetCIDR: "10.0.0.0/19", AssociationID: "trunk-assoc-1"}}
	got, err := EncodeAnnotation(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"eniId":"eni-0abc","ifAddress":"02:50:00:00:00:01","privateIp":"10.0.0.5","ipv6Addr":"","vlanId":1,` +
		`"subnetCidr":"10.0.0.0/19","subnetV6Cidr":"","associationID":"trunk-assoc-1"}]`
	if got != want {
		t.Fatalf("encoded\n %s\nwant\n %s", got, want)
	}
	back, err := DecodeAnnotation(got)
	if err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
}

func TestDecodeAnnotation(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []ENIDetails
		wantErr bool
	}{
		"AWS 2021 format, fewer fields": {in: `[{"eniId":"eni-1","ifAddress":"06:25:70:70:b1:69","privateIp":"192.168.53.199","vlanId":2,"subnetCidr":"192.168.32.0/19"}]`,
			want: []ENIDetails{{ENIID: "eni-1", IfAddress: "06:25:70:70:b1:69", PrivateIP: "192.168.53.199", VLANID: 2, SubnetCIDR: "192.168.32.0/19"}}},
		"two ENIs":   {in: `[{"eniId":"a","vlanId":1},{"eniId":"b","vlanId":2}]`, want: []ENIDetails{{ENIID: "a", VLANID: 1}, {ENIID: "b", VLANID: 2}}},
		"not a list": {in: `{"eniId":"a"}`, wantErr: true},
		"garbage":    {in: `eni-1`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeAnnotation(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && !reflect.DeepEqual(got, tc.want)) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}
