package state

import (
	"context"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestIAMPersistsAndOldFilesLoad: IAM entities survive a reopen, and a
// state file written before IAM existed (no IAM buckets) opens with an empty
// IAM and takes IAM writes.
func TestIAMPersistsAndOldFilesLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	if err := s.Update(context.Background(), false, func(tx *Tx) error {
		_, err := tx.CreateVPC("10.0.0.0/16", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// Make it an old file: drop every IAM bucket.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(btx *bolt.Tx) error {
		for _, b := range []string{"iamOIDCProviders", "iamRoles", "iamPolicies", "iamInstanceProfiles", "iamSecrets"} {
			if err := btx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	s = openAt(t, path)
	err = s.Update(context.Background(), false, func(tx *Tx) error {
		if len(tx.VPCs()) != 1 || len(tx.Roles()) != 0 {
			t.Errorf("old file: %d VPCs, %d roles", len(tx.VPCs()), len(tx.Roles()))
		}
		if _, err := tx.CreateRole(RoleInput{Name: "r", Path: "/", TrustPolicy: "{}"}); err != nil {
			return err
		}
		if err := tx.PutRolePolicy("r", "p", "{}"); err != nil {
			return err
		}
		if _, err := tx.CreateOIDCProvider("issuer.example/x", []string{"sts.amazonaws.com"}, nil, nil); err != nil {
			return err
		}
		tx.IAMSecret("sts", 32)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key := func(s *Store) (k []byte) {
		_ = s.Update(context.Background(), false, func(tx *Tx) error { k = tx.IAMSecret("sts", 32); return nil })
		return k
	}
	k1 := key(s)
	_ = s.Close()

	s = openAt(t, path)
	defer func() { _ = s.Close() }()
	_ = s.View(func(tx *Tx) error {
		r, err := tx.Role("R") // names compare case-insensitively
		if err != nil || r.InlinePolicies["p"] != "{}" {
			t.Errorf("role after reopen = %+v, %v", r, err)
		}
		if _, err := tx.OIDCProvider(IAMARN("oidc-provider/issuer.example/x")); err != nil {
			t.Error(err)
		}
		return nil
	})
	if k2 := key(s); string(k1) != string(k2) || len(k1) != 32 {
		t.Errorf("STS key changed across a reopen")
	}
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: path, Region: "us-west-2"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type countingApplier struct{ n int }

func (c *countingApplier) Apply(context.Context, *Snapshot) error { c.n++; return nil }

// TestIAMChangesSkipTheDataPath: the data path builds nothing from IAM, so
// an IAM-only transaction does not run a (whole-state) Apply.
func TestIAMChangesSkipTheDataPath(t *testing.T) {
	a := &countingApplier{}
	s, err := Open(context.Background(), Options{Region: "us-west-2", Applier: a})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	start := a.n
	if err := s.Update(context.Background(), false, func(tx *Tx) error {
		_, err := tx.CreateRole(RoleInput{Name: "r", Path: "/", TrustPolicy: "{}"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if a.n != start {
		t.Errorf("CreateRole ran Apply %d times", a.n-start)
	}
	if err := s.Update(context.Background(), false, func(tx *Tx) error {
		_, err := tx.CreateVPC("10.0.0.0/16", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if a.n != start+1 {
		t.Errorf("CreateVpc ran Apply %d times, want 1", a.n-start)
	}
}
