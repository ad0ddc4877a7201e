package podstate

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func branch() *Record {
	return &Record{ContainerID: "c1", IfName: "eth0", PodNamespace: "default", PodName: "postgres-test",
		Kind: KindBranch, IP: netip.MustParseAddr("10.0.3.128"), Gateway: netip.MustParseAddr("10.0.0.1"),
		HostVeth: "vlan0123456789a", VLAN: 1, BranchMAC: "02:3b:a8:a7:9c:f5", SubnetCIDR: "10.0.0.0/19",
		SubInterface: "vlan.eth.1", RouteTable: 101, Mode: ModeStrict}
}

func TestPutGetDelete(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("c1", "eth0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}
	want := branch()
	if err := s.Put(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("c1", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *want || got.Version != Version {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	if err := s.Delete("c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("c1", "eth0"); err != nil {
		t.Fatalf("second Delete: %v (DEL must be idempotent)", err)
	}
	if _, err := s.Get("c1", "eth0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		mutate  func(*Record)
		wantErr string
	}{
		"valid branch":                {func(*Record) {}, ""},
		"valid regular":               {func(r *Record) { r.Kind, r.VLAN, r.SubInterface, r.RouteTable, r.Mode = KindRegular, 0, "", 0, "" }, ""},
		"regular on a secondary ENI":  {func(r *Record) { r.Kind, r.VLAN, r.SubInterface, r.RouteTable, r.Mode = KindRegular, 0, "", 3, "" }, ""},
		"regular in a reserved table": {func(r *Record) { r.Kind, r.VLAN, r.SubInterface, r.RouteTable, r.Mode = KindRegular, 0, "", 254, "" }, "route table 254"},
		"version 1 still read":        {func(r *Record) { r.Version = 1 }, ""},
		"future version":              {func(r *Record) { r.Version = Version + 1 }, "this build reads versions"},
		"unknown kind":                {func(r *Record) { r.Kind = "ipvlan" }, `kind "ipvlan"`},
		"no ip":                       {func(r *Record) { r.IP = netip.Addr{} }, "without a pod IP"},
		"vlan out of range":           {func(r *Record) { r.VLAN = 4095 }, "VLAN 4095"},
		"bad mode":                    {func(r *Record) { r.Mode = "lenient" }, `mode "lenient"`},
		"no host veth":                {func(r *Record) { r.HostVeth = "" }, "host veth"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := branch()
			r.Version = Version
			tc.mutate(r)
			err := r.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestListReportsBadFilesAndKeepsGoodOnes: one corrupt file must not hide the others, or the
// agent would leak their IPs.
func TestListReportsBadFilesAndKeepsGoodOnes(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(branch()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c2_eth0.json"), []byte(`{"version": 1, "containerID": "c2"`), 0o600); err != nil {
		t.Fatal(err)
	}
	recs, errs := s.List()
	if len(recs) != 1 || recs[0].ContainerID != "c1" {
		t.Fatalf("List records = %v", recs)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "c2_eth0.json") {
		t.Fatalf("List errors = %v, want one naming c2_eth0.json", errs)
	}
}
