package v1beta1_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// Two ids standing in for the tutorial's $CLUSTERSG and $RDSSG; both id lengths AWS uses.
const (
	clusterSG = "sg-0a1b2c3d4e5f60718"
	rdsSG     = "sg-1234abcd"
)

// TestSeedPoliciesApply applies the seeds' SecurityGroupPolicy manifests with kubectl, after
// exactly the placeholder substitution their tutorials prescribe, and reads them back.
func TestSeedPoliciesApply(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()

	t.Run("my-sg-policy", func(t *testing.T) {
		seed := readFile(t, "testdata/sgp-policy.yaml")
		manifest := strings.NewReplacer("sg-yyyyyy", clusterSG, "sg-zzzzzz", rdsSG).Replace(seed)
		if _, err := env.Kubectl(ctx, manifest, "apply", "-n", "default", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		var got v1beta1.SecurityGroupPolicy
		out, err := env.Kubectl(ctx, "", "get", "sgp", "my-sg-policy", "-n", "default", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("decoding %q: %v", out, err)
		}
		if g := got.Spec.SecurityGroups.Groups; len(g) != 2 || g[0] != clusterSG || g[1] != rdsSG {
			t.Errorf("groupIds = %v, want [%s %s]", g, clusterSG, rdsSG)
		}
		if got.Spec.ServiceAccountSelector == nil || got.Spec.ServiceAccountSelector.MatchLabels["role"] != "backend" {
			t.Errorf("serviceAccountSelector = %+v, want matchLabels role=backend", got.Spec.ServiceAccountSelector)
		}
		if got.Spec.PodSelector != nil {
			t.Errorf("podSelector = %+v, want unset", got.Spec.PodSelector)
		}

		table, err := env.Kubectl(ctx, "", "get", "sgp", "-n", "default")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"SECURITY-GROUP-IDS", "MATCHED-PODS", "AGE", "my-sg-policy", clusterSG} {
			if !strings.Contains(table, want) {
				t.Errorf("kubectl get sgp output lacks %q:\n%s", want, table)
			}
		}
	})

	t.Run("metabase kustomization", func(t *testing.T) {
		dir := t.TempDir()
		copyTree(t, "testdata/metabase", dir)
		patch := filepath.Join(dir, "envs/test/security-group-policy.patch.yaml")
		// The walk-through's own sed: s/<POD_SECURITY_GROUP_ID>/…/; s/<EKS_CLUSTER_SECURITY_GROUP_ID>/…/
		seed := readFile(t, patch)
		writeFile(t, patch, strings.NewReplacer("<POD_SECURITY_GROUP_ID>", rdsSG, "<EKS_CLUSTER_SECURITY_GROUP_ID>", clusterSG).Replace(seed))
		if _, err := env.Kubectl(ctx, "", "create", "namespace", "metabase"); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Kubectl(ctx, "", "apply", "-k", filepath.Join(dir, "envs/test")); err != nil {
			t.Fatal(err)
		}
		out, err := env.Kubectl(ctx, "", "get", "sgp", "metabase", "-n", "metabase", "-o", "jsonpath={.spec.securityGroups.groupIds}")
		if err != nil {
			t.Fatal(err)
		}
		if want := `["` + rdsSG + `","` + clusterSG + `"]`; out != want {
			t.Errorf("groupIds = %s, want %s", out, want)
		}
	})
}

// TestInvalidPoliciesRejected checks that the apiserver refuses bad policies with a message a
// user can act on, through kubectl as a user would meet it.
func TestInvalidPoliciesRejected(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()

	policy := func(spec string) string {
		return "apiVersion: vpcresources.k8s.aws/v1beta1\nkind: SecurityGroupPolicy\nmetadata:\n  name: p\n  namespace: default\nspec:\n" + spec
	}
	tests := map[string]struct {
		manifest string
		wantErr  []string // substrings of kubectl's error; empty means it must apply
	}{
		"no selector": {
			manifest: policy("  securityGroups:\n    groupIds: [sg-1234abcd]\n"),
			wantErr:  []string{"at least one of podSelector or serviceAccountSelector must be set"},
		},
		"seed placeholder is not a group id": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-yyyyyy]\n"),
			wantErr:  []string{`spec.securityGroups.groupIds[0]`, "should match", "sg-"},
		},
		"uppercase hex": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234ABCD]\n"),
			wantErr:  []string{`spec.securityGroups.groupIds[0]`, "should match"},
		},
		"empty list": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: []\n"),
			wantErr:  []string{"spec.securityGroups.groupIds", "at least 1 items"},
		},
		"duplicate ids": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234abcd, sg-1234abcd]\n"),
			wantErr:  []string{`spec.securityGroups.groupIds[1]: Duplicate value: "sg-1234abcd"`},
		},
		"more than 16 groups": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [" + seventeenGroups() + "]\n"),
			wantErr:  []string{"spec.securityGroups.groupIds", "at most 16 items"},
		},
		"no security groups": {
			manifest: policy("  podSelector: {}\n"),
			wantErr:  []string{"spec.securityGroups: Required value"},
		},
		"empty pod selector selects all": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234abcd]\n"),
		},
		"a warm target": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234abcd]\n  warmBranchesPerNode: 3\n  updatePolicy: InPlace\n"),
		},
		"a negative warm target": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234abcd]\n  warmBranchesPerNode: -1\n"),
			wantErr:  []string{"spec.warmBranchesPerNode", "greater than or equal to 0"},
		},
		"a warm target beyond any trunk": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234abcd]\n  warmBranchesPerNode: 121\n"),
			wantErr:  []string{"spec.warmBranchesPerNode", "less than or equal to 120"},
		},
		"an unknown update policy": {
			manifest: policy("  podSelector: {}\n  securityGroups:\n    groupIds: [sg-1234abcd]\n  updatePolicy: Recreate\n"),
			wantErr:  []string{"spec.updatePolicy", `supported values: "None", "InPlace"`},
		},
		"both selectors": {
			manifest: policy("  podSelector:\n    matchLabels: {app: api}\n  serviceAccountSelector:\n    matchExpressions: [{key: role, operator: In, values: [backend]}]\n  securityGroups:\n    groupIds: [sg-1234abcd, sg-0a1b2c3d4e5f60718]\n"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := env.Kubectl(ctx, tc.manifest, "create", "--dry-run=server", "-f", "-")
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want rejected with %q, got accepted", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func seventeenGroups() string {
	ids := make([]string, 17)
	for i := range ids {
		ids[i] = "sg-" + strings.Repeat("0", 6) + string(rune('a'+i/10)) + string(rune('0'+i%10))
	}
	return strings.Join(ids, ", ")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
