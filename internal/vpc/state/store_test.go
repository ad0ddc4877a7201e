package state

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/idgen"
)

func open(t *testing.T, path string, applier Applier) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{Path: path, Region: "us-west-2", IDs: idgen.NewSeeded(uint64(len(path))),
		Clock: clocktesting.NewFakeClock(time.Unix(1700000000, 0)), Applier: applier})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestFailedTransactionChangesNothing(t *testing.T) {
	s := open(t, "", nil)
	boom := errors.New("boom")
	err := s.Update(t.Context(), false, func(tx *Tx) error {
		v, err := tx.CreateVPC("10.0.0.0/16", nil)
		if err != nil {
			return err
		}
		if _, err := tx.CreateSubnet(v.ID, "10.0.0.0/24", "", nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	_ = s.View(func(tx *Tx) error {
		if len(tx.VPCs()) != 0 || len(tx.Subnets()) != 0 || len(tx.SecurityGroups()) != 0 {
			t.Errorf("rolled-back objects visible")
		}
		if len(s.m.groupByName) != 0 || len(s.m.subnetsByVPC) != 0 || len(s.m.ruleOwner) != 0 {
			t.Errorf("indexes not rolled back: %v %v %v", s.m.groupByName, s.m.subnetsByVPC, s.m.ruleOwner)
		}
		return nil
	})
	err = s.Update(t.Context(), true, func(tx *Tx) error { _, err := tx.CreateVPC("10.0.0.0/16", nil); return err })
	if !apierr.HasCode(err, apierr.CodeDryRunOperation) {
		t.Fatalf("dry run err = %v", err)
	}
	_ = s.View(func(tx *Tx) error {
		if len(tx.VPCs()) != 0 {
			t.Error("dry run committed")
		}
		return nil
	})
}

type recorder struct {
	calls [][]Change
	err   error
}

func (r *recorder) Apply(_ context.Context, snap *Snapshot) error {
	r.calls = append(r.calls, snap.Changes())
	return r.err
}

func TestApplierSeesCommitsInOrder(t *testing.T) {
	rec := &recorder{}
	s := open(t, "", rec)
	var vpc *VPC
	if err := s.Update(t.Context(), false, func(tx *Tx) (err error) { vpc, err = tx.CreateVPC("10.0.0.0/16", nil); return err }); err != nil {
		t.Fatal(err)
	}
	_ = s.Update(t.Context(), false, func(*Tx) error { return errors.New("no") })
	if len(rec.calls) != 2 || rec.calls[0] != nil || len(rec.calls[1]) != 2 {
		t.Fatalf("applier calls = %v, want full sync then the VPC and its default group", rec.calls)
	}
	rec.err = errors.New("nft down")
	err := s.Update(t.Context(), false, func(tx *Tx) error { return tx.CreateTags([]string{vpc.ID}, Tags{"a": "b"}) })
	if !errors.Is(err, ErrApply) {
		t.Fatalf("err = %v, want ErrApply", err)
	}
	_ = s.View(func(tx *Tx) error {
		if v, _ := tx.VPC(vpc.ID); v.Tags["a"] != "b" {
			t.Error("mutation lost when the data path failed")
		}
		return nil
	})
}

func TestReopenRestoresStateAndIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, nil)
	var subnet *Subnet
	var eni *ENI
	err := s.Update(t.Context(), false, func(tx *Tx) error {
		v, _ := tx.CreateVPC("10.0.0.0/16", nil)
		subnet, _ = tx.CreateSubnet(v.ID, "10.0.0.0/28", "", nil)
		var err error
		if eni, err = tx.CreateNetworkInterface(CreateENIInput{SubnetID: subnet.ID, SecondaryCount: 2}); err != nil {
			return err
		}
		_, err = tx.CreateNetworkInterfacePermission(PermissionInput{ENIID: eni.ID, AccountID: AccountID, Permission: PermissionInstanceAttach})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, path, nil)
	err = s2.Update(t.Context(), false, func(tx *Tx) error {
		got, ok := tx.NetworkInterface(eni.ID)
		if !ok || got.MAC != eni.MAC || len(got.PrivateIPs) != 3 {
			t.Errorf("ENI after reopen = %+v", got)
		}
		if perms := tx.ENIPermissions(eni.ID); len(perms) != 1 || perms[0].AccountID != AccountID {
			t.Errorf("ENI permissions after reopen = %+v", perms)
		}
		if n := tx.AvailableIPCount(subnet); n != 8 {
			t.Errorf("available = %d, want 8", n)
		}
		// Allocation must see the reloaded addresses.
		more, err := tx.CreateNetworkInterface(CreateENIInput{SubnetID: subnet.ID, SecondaryCount: 7})
		if err != nil {
			return err
		}
		for _, ip := range more.PrivateIPs {
			for _, old := range eni.PrivateIPs {
				if ip == old {
					t.Errorf("address %s allocated twice", ip)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV1 opens a hand-made schema-1 file: security groups with
// IpPermission lists and no rule ids, ENIs with a trunk flag.
func TestMigrateV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	fixture := map[string]map[string]string{
		"meta":    {"schema": "1"},
		"vpcs":    {"vpc-0000000000000000a": `{"id":"vpc-0000000000000000a","cidr":"10.0.0.0/16","cidrAssociationId":"vpc-cidr-assoc-00000000000000001","defaultGroupId":"sg-0000000000000000a"}`},
		"subnets": {"subnet-0000000000000000a": `{"id":"subnet-0000000000000000a","vpcId":"vpc-0000000000000000a","cidr":"10.0.0.0/24","availabilityZone":"us-west-2a"}`},
		"securityGroups": {
			"sg-0000000000000000a": `{"id":"sg-0000000000000000a","vpcId":"vpc-0000000000000000a","name":"default","description":"default VPC security group",
				"ingress":[{"protocol":"-1","fromPort":-1,"toPort":-1,"groups":["sg-0000000000000000a"]}],
				"egress":[{"protocol":"-1","fromPort":-1,"toPort":-1,"cidrs":["0.0.0.0/0"]}]}`,
			"sg-0000000000000000b": `{"id":"sg-0000000000000000b","vpcId":"vpc-0000000000000000a","name":"db","description":"db",
				"ingress":[{"protocol":"tcp","fromPort":5432,"toPort":5432,"cidrs":["10.0.0.0/8","10.1.0.0/16"],"groups":["sg-0000000000000000a"]}],"tags":{"team":"data"}}`,
		},
		"instances": {},
		"networkInterfaces": {
			"eni-0000000000000000a": `{"id":"eni-0000000000000000a","subnetId":"subnet-0000000000000000a","vpcId":"vpc-0000000000000000a","availabilityZone":"us-west-2a","mac":"02:00:00:00:00:01","trunk":true,"privateIps":["10.0.0.4"],"groups":["sg-0000000000000000b"],"sourceDestCheck":true}`,
			"eni-0000000000000000b": `{"id":"eni-0000000000000000b","subnetId":"subnet-0000000000000000a","vpcId":"vpc-0000000000000000a","availabilityZone":"us-west-2a","mac":"02:00:00:00:00:02","privateIps":["10.0.0.5"],"groups":["sg-0000000000000000a"],"sourceDestCheck":true}`,
		},
		"trunkAssociations": {},
	}
	err = db.Update(func(btx *bolt.Tx) error {
		for bucket, rows := range fixture {
			b, err := btx.CreateBucket([]byte(bucket))
			if err != nil {
				return err
			}
			for k, v := range rows {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	s := open(t, path, nil)
	_ = s.View(func(tx *Tx) error {
		g, ok := tx.SecurityGroup("sg-0000000000000000b")
		if !ok || len(g.Rules) != 3 || g.Tags["team"] != "data" {
			t.Fatalf("migrated group = %+v", g)
		}
		for _, r := range g.Rules {
			if !wellFormed("sgr", r.ID) || r.Protocol != "tcp" || r.FromPort != 5432 {
				t.Errorf("migrated rule %+v", r)
			}
		}
		if trunk, _ := tx.NetworkInterface("eni-0000000000000000a"); trunk.InterfaceType != InterfaceTypeTrunk {
			t.Errorf("trunk flag became %q", trunk.InterfaceType)
		}
		if plain, _ := tx.NetworkInterface("eni-0000000000000000b"); plain.InterfaceType != InterfaceTypeInterface {
			t.Errorf("plain ENI became %q", plain.InterfaceType)
		}
		return nil
	})
	// The group is still referenced by the migrated rule index.
	err = s.Update(t.Context(), false, func(tx *Tx) error { _, err := tx.DeleteSecurityGroup("sg-0000000000000000b", ""); return err })
	if !apierr.HasCode(err, apierr.CodeDependencyViolation) {
		t.Errorf("delete of a group in use = %v", err)
	}
	_ = s.Close()
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	_ = db.View(func(btx *bolt.Tx) error {
		if v := string(btx.Bucket(metaBucket).Get(schemaKey)); v != "2" {
			t.Errorf("schema after migration = %s", v)
		}
		var raw map[string]any
		_ = json.Unmarshal(btx.Bucket([]byte("networkInterfaces")).Get([]byte("eni-0000000000000000a")), &raw)
		if _, old := raw["trunk"]; old {
			t.Error("v1 trunk field still stored")
		}
		return nil
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	db, _ := bolt.Open(path, 0o600, nil)
	_ = db.Update(func(btx *bolt.Tx) error {
		b, _ := btx.CreateBucket(metaBucket)
		return b.Put(schemaKey, []byte("99"))
	})
	_ = db.Close()
	if _, err := Open(t.Context(), Options{Path: path, Region: "us-west-2"}); err == nil {
		t.Fatal("opened a file from a newer schema")
	}
}
