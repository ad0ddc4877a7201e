package state

import (
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestInstanceWithoutMetadataOptionsLoads: a schema-2 file written before
// metadata options were modelled loads, its instances with EC2's defaults;
// options set later are stored next to the old fields and survive a
// reopen.
func TestInstanceWithoutMetadataOptionsLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "before.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "i-0000000000000000a"
	fixture := map[string]map[string]string{
		"meta":    {"schema": "2"},
		"vpcs":    {"vpc-0000000000000000a": `{"id":"vpc-0000000000000000a","cidr":"10.0.0.0/16","cidrAssociationId":"vpc-cidr-assoc-00000000000000001","defaultGroupId":"sg-0000000000000000a"}`},
		"subnets": {"subnet-0000000000000000a": `{"id":"subnet-0000000000000000a","vpcId":"vpc-0000000000000000a","cidr":"10.0.0.0/24","availabilityZone":"us-west-2a"}`},
		"instances": {id: `{"id":"i-0000000000000000a","reservationId":"r-0000000000000000a","imageId":"ami-12345678","type":"m5.large",
			"subnetId":"subnet-0000000000000000a","vpcId":"vpc-0000000000000000a","availabilityZone":"us-west-2a","state":"running",
			"launchIndex":0,"launchTime":"2023-11-14T22:13:20Z","primaryEniId":"eni-0000000000000000a","privateIpAddress":"10.0.0.4"}`},
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
	err = s.Update(t.Context(), false, func(tx *Tx) error {
		inst, ok := tx.Instance(id)
		if !ok {
			t.Fatal("instance not loaded")
		}
		mo := inst.MetadataOptions
		if mo.Tokens() != HTTPTokensOptional || mo.PutResponseHopLimit() != 1 || mo.Endpoint() != EndpointEnabled {
			t.Errorf("options of an old record = %s %d %s, want EC2's defaults", mo.Tokens(), mo.PutResponseHopLimit(), mo.Endpoint())
		}
		two := 2
		_, err := tx.ModifyInstanceMetadataOptions(id, MetadataOptionsInput{HopLimit: &two})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = open(t, path, nil)
	_ = s.View(func(tx *Tx) error {
		if inst, _ := tx.Instance(id); inst.MetadataOptions.PutResponseHopLimit() != 2 || inst.PrivateIPAddress != "10.0.0.4" {
			t.Errorf("after reopen: %+v", inst)
		}
		return nil
	})
	_ = s.Close()
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	_ = db.View(func(btx *bolt.Tx) error {
		if v := string(btx.Bucket(metaBucket).Get(schemaKey)); v != "2" {
			t.Errorf("schema = %s, want 2: the field is additive", v)
		}
		var raw map[string]any
		_ = json.Unmarshal(btx.Bucket([]byte("instances")).Get([]byte(id)), &raw)
		if mo, _ := raw["metadataOptions"].(map[string]any); mo["httpPutResponseHopLimit"] != float64(2) || raw["primaryEniId"] != "eni-0000000000000000a" {
			t.Errorf("stored record %v", raw)
		}
		return nil
	})
}
