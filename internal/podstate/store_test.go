package podstate

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestCorruptRecordIsTypedAndSetAside: a record file that cannot drive a teardown is reported
// as a CorruptError naming the file, and SetAside moves it next to the records under a name
// List skips, byte for byte, so that the container's DEL and ADD are no longer blocked by it.
func TestCorruptRecordIsTypedAndSetAside(t *testing.T) {
	future := branch()
	future.Version = Version + 1
	tests := map[string]struct {
		content string
		wantErr string
	}{
		"not json":       {`{garbage`, "decoding pod network record"},
		"truncated":      {`{"version": 2, "containerID": "c1"`, "decoding pod network record"},
		"empty":          {``, "decoding pod network record"},
		"invalid record": {`{"version": 2, "containerID": "c1", "ifName": "eth0", "kind": "ipvlan"}`, `kind "ipvlan"`},
		"future version": {string(mustJSON(t, future)), "this build reads versions"},
	}
	at := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "c1_eth0.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = s.Get("c1", "eth0")
			var corrupt *CorruptError
			if !errors.As(err, &corrupt) || corrupt.Path != path || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Get = %v, want a CorruptError for %s saying %q", err, path, tc.wantErr)
			}
			if errors.Is(err, ErrNotFound) {
				t.Fatalf("Get = %v: a corrupt record is not a missing one", err)
			}

			aside, err := s.SetAside("c1", "eth0", at)
			if err != nil {
				t.Fatal(err)
			}
			if want := path + ".corrupt-20250304T050607.000000008Z"; aside != want {
				t.Errorf("SetAside = %s, want %s", aside, want)
			}
			if got, err := os.ReadFile(aside); err != nil || string(got) != tc.content {
				t.Errorf("set-aside file holds %q (%v), want the record's bytes %q", got, err, tc.content)
			}
			if _, err := s.Get("c1", "eth0"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after SetAside = %v, want ErrNotFound", err)
			}
			if recs, errs := s.List(); len(recs) != 0 || len(errs) != 0 {
				t.Errorf("List after SetAside = %v %v, want nothing: set-aside files are not records", recs, errs)
			}
			if _, err := s.SetAside("c1", "eth0", at); !errors.Is(err, ErrNotFound) {
				t.Errorf("second SetAside = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestSetAsideKeepsEarlierFiles: two set-asides at the same instant keep both files.
func TestSetAsideKeepsEarlierFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	var paths []string
	for _, content := range []string{"{first", "{second"} {
		if err := os.WriteFile(filepath.Join(dir, "c1_eth0.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := s.SetAside("c1", "eth0", at)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for i, want := range []string{"{first", "{second"} {
		if got, err := os.ReadFile(paths[i]); err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", paths[i], got, err, want)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
