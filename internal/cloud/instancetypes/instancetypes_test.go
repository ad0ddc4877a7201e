package instancetypes

import "testing"

func TestLookup(t *testing.T) {
	tests := map[string]struct {
		name    string
		want    Type
		wantErr bool
	}{
		"m5.large":   {name: "m5.large", want: Type{MaxENIs: 3, IPv4PerENI: 10, BranchENIs: 9, Trunking: true}},
		"m5.24xl":    {name: "m5.24xlarge", want: Type{MaxENIs: 15, IPv4PerENI: 50, BranchENIs: 107, Trunking: true}},
		"c5.18xl":    {name: "c5.18xlarge", want: Type{MaxENIs: 15, IPv4PerENI: 50, BranchENIs: 107, Trunking: true}},
		"c5.9xl":     {name: "c5.9xlarge", want: Type{MaxENIs: 8, IPv4PerENI: 30, BranchENIs: 54, Trunking: true}},
		"r5.2xl":     {name: "r5.2xlarge", want: Type{MaxENIs: 4, IPv4PerENI: 15, BranchENIs: 38, Trunking: true}},
		"t3.nano":    {name: "t3.nano", want: Type{MaxENIs: 2, IPv4PerENI: 2}},
		"t3.2xlarge": {name: "t3.2xlarge", want: Type{MaxENIs: 4, IPv4PerENI: 15}},
		"unknown":    {name: "x9.huge", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := Lookup(tc.name)
			if ok == tc.wantErr {
				t.Fatalf("Lookup(%q) ok = %v", tc.name, ok)
			}
			if !ok {
				return
			}
			if got.MaxENIs != tc.want.MaxENIs || got.IPv4PerENI != tc.want.IPv4PerENI ||
				got.BranchENIs != tc.want.BranchENIs || got.Trunking != tc.want.Trunking {
				t.Errorf("Lookup(%q) = %+v, want limits %+v", tc.name, got, tc.want)
			}
		})
	}
}

func TestAllCoversFamilies(t *testing.T) {
	counts := map[string]int{}
	for _, ty := range All() {
		counts[ty.Name[:2]]++
	}
	want := map[string]int{"m5": 8, "c5": 8, "r5": 8, "t3": 7}
	for fam, n := range want {
		if counts[fam] != n {
			t.Errorf("family %s has %d types, want %d", fam, counts[fam], n)
		}
	}
}
