package state

import (
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/podsg/podsg/internal/vpc/idgen"
)

// SchemaVersion is the layout this code writes. Bump it with a migration
// whenever a stored object changes shape incompatibly.
//
// Layout: bucket "meta" holds "schema" (decimal); one bucket per table
// (see model.tables) maps object id → JSON of the object.
//
// History:
//
//	1: security groups stored ingress/egress as IpPermission lists without
//	   rule ids; ENIs stored "trunk": bool instead of an interface type; no
//	   client tokens.
//	2: flat rules with sgr- ids, ENI interfaceType, clientTokens bucket.
//	   Later, without a bump (a new table, created on load when missing, which
//	   older binaries ignore): networkInterfacePermissions.
const SchemaVersion = 2

var (
	metaBucket = []byte("meta")
	schemaKey  = []byte("schema")
)

// migrations[v] upgrades a file from version v to v+1 inside one bbolt
// transaction, so a crash mid-migration leaves the old version intact.
var migrations = map[int]func(btx *bolt.Tx, ids idgen.Source) error{
	1: migrateV1ToV2,
}

func (s *Store) load() error {
	err := s.db.Update(func(btx *bolt.Tx) error {
		version, err := readSchema(btx)
		if err != nil {
			return err
		}
		if version > SchemaVersion {
			return fmt.Errorf("state file has schema %d, newer than this binary's %d", version, SchemaVersion)
		}
		for v := version; v < SchemaVersion; v++ {
			if v == 0 {
				break // fresh file: nothing to migrate
			}
			if err := migrations[v](btx, s.opts.IDs); err != nil {
				return fmt.Errorf("migrating schema %d to %d: %w", v, v+1, err)
			}
		}
		for _, t := range s.m.tables() {
			if _, err := btx.CreateBucketIfNotExists([]byte(t.name())); err != nil {
				return err
			}
		}
		meta, err := btx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		return meta.Put(schemaKey, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return fmt.Errorf("preparing state file: %w", err)
	}
	err = s.db.View(func(btx *bolt.Tx) error {
		for _, t := range s.m.tables() {
			b := btx.Bucket([]byte(t.name()))
			t.reserve(b.Stats().KeyN)
			err := b.ForEach(func(k, v []byte) error {
				return t.decode(string(k), v)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading state: %w", err)
	}
	return nil
}

// readSchema returns 0 for a new, empty file.
func readSchema(btx *bolt.Tx) (int, error) {
	meta := btx.Bucket(metaBucket)
	if meta == nil {
		empty := true
		_ = btx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return 0, fmt.Errorf("file has no schema version; not a podsg-vpc state file")
		}
		return 0, nil
	}
	v, err := strconv.Atoi(string(meta.Get(schemaKey)))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("bad schema version %q", meta.Get(schemaKey))
	}
	return v, nil
}

type v1Permission struct {
	Protocol string   `json:"protocol"`
	FromPort int32    `json:"fromPort"`
	ToPort   int32    `json:"toPort"`
	CIDRs    []string `json:"cidrs"`
	Groups   []string `json:"groups"`
}

type v1SecurityGroup struct {
	ID          string         `json:"id"`
	VPCID       string         `json:"vpcId"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Ingress     []v1Permission `json:"ingress"`
	Egress      []v1Permission `json:"egress"`
	Tags        Tags           `json:"tags"`
}

func migrateV1ToV2(btx *bolt.Tx, ids idgen.Source) error {
	if b := btx.Bucket([]byte("securityGroups")); b != nil {
		if err := rewriteBucket(b, func(v []byte) ([]byte, error) { return upgradeGroupV1(v, ids) }); err != nil {
			return fmt.Errorf("security groups: %w", err)
		}
	}
	if b := btx.Bucket([]byte("networkInterfaces")); b != nil {
		if err := rewriteBucket(b, upgradeENIV1); err != nil {
			return fmt.Errorf("network interfaces: %w", err)
		}
	}
	_, err := btx.CreateBucketIfNotExists([]byte("clientTokens"))
	return err
}

func rewriteBucket(b *bolt.Bucket, fn func([]byte) ([]byte, error)) error {
	updated := map[string][]byte{}
	err := b.ForEach(func(k, v []byte) error {
		nv, err := fn(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		updated[string(k)] = nv
		return nil
	})
	if err != nil {
		return err
	}
	for k, v := range updated {
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	return nil
}

func upgradeGroupV1(data []byte, ids idgen.Source) ([]byte, error) {
	var old v1SecurityGroup
	if err := json.Unmarshal(data, &old); err != nil {
		return nil, err
	}
	g := SecurityGroup{ID: old.ID, VPCID: old.VPCID, Name: old.Name, Description: old.Description, Tags: old.Tags}
	add := func(perms []v1Permission, egress bool) {
		for _, p := range perms {
			base := Rule{Egress: egress, Protocol: p.Protocol, FromPort: p.FromPort, ToPort: p.ToPort}
			for _, c := range p.CIDRs {
				r := base
				r.ID, r.CIDR = idgen.ID(ids, "sgr"), c
				g.Rules = append(g.Rules, r)
			}
			for _, ref := range p.Groups {
				r := base
				r.ID, r.GroupID = idgen.ID(ids, "sgr"), ref
				g.Rules = append(g.Rules, r)
			}
		}
	}
	add(old.Ingress, false)
	add(old.Egress, true)
	return json.Marshal(g)
}

func upgradeENIV1(data []byte) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	if _, ok := obj["interfaceType"]; !ok {
		t := InterfaceTypeInterface
		if trunk, _ := obj["trunk"].(bool); trunk {
			t = InterfaceTypeTrunk
		}
		obj["interfaceType"] = t
	}
	delete(obj, "trunk")
	return json.Marshal(obj)
}
