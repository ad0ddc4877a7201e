package webhook

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseWebhookManifests(t *testing.T) {
	mut, val, err := parseManifests()
	if err != nil {
		t.Fatal(err)
	}
	if p := *mut.Webhooks[0].ClientConfig.Service.Path; p != MutatePath {
		t.Errorf("mutating path = %s", p)
	}
	if p := *val.Webhooks[0].ClientConfig.Service.Path; p != ValidatePath {
		t.Errorf("validating path = %s", p)
	}
	c := target{url: "https://10.0.0.1:9443", caBundle: []byte("ca")}.clientConfig("/mutate-v1-pod")
	if *c.URL != "https://10.0.0.1:9443/mutate-v1-pod" || c.Service != nil {
		t.Errorf("URL client config = %+v", c)
	}
}

func TestNewCert(t *testing.T) {
	data, err := newCert([]string{"podsg-webhook-service.podsg-system.svc", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if len(data[k]) == 0 {
			t.Errorf("missing %s", k)
		}
	}
}

// TestIdentityNamespaceSelector: the selector narrows the pod identity webhook only, and
// kube-system and podsg's namespace stay exempt whatever it selects; the security group
// webhooks keep the exemption alone.
func TestIdentityNamespaceSelector(t *testing.T) {
	exempt := metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "podsg-system"}}
	enabled := &metav1.LabelSelector{MatchLabels: map[string]string{"podsg.io/pod-identity": "enabled"}}
	team := metav1.LabelSelectorRequirement{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}
	tests := map[string]struct {
		sel  *metav1.LabelSelector
		want *metav1.LabelSelector
	}{
		"none: every namespace but the exempt ones": {nil, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{exempt}}},
		"a label": {enabled, &metav1.LabelSelector{MatchLabels: enabled.MatchLabels, MatchExpressions: []metav1.LabelSelectorRequirement{exempt}}},
		"an expression": {&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{team}},
			&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{team, exempt}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := tc.sel.DeepCopy()
			mut, val, err := configurations(target{url: "https://127.0.0.1:9443", namespace: "podsg-system"}, tc.sel, "")
			if err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(tc.sel, before) {
				t.Errorf("the selector passed in was changed: %+v", tc.sel)
			}
			seen := 0
			for _, wh := range mut.Webhooks {
				want := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{exempt}}
				if strings.HasSuffix(*wh.ClientConfig.URL, IdentityPath) {
					want, seen = tc.want, seen+1
				}
				if !equality.Semantic.DeepEqual(wh.NamespaceSelector, want) {
					t.Errorf("webhook %s: namespaceSelector %+v, want %+v", wh.Name, wh.NamespaceSelector, want)
				}
			}
			if seen != 1 {
				t.Errorf("%d webhooks serve %s, want 1", seen, IdentityPath)
			}
			for _, wh := range val.Webhooks {
				if want := (&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{exempt}}); !equality.Semantic.DeepEqual(wh.NamespaceSelector, want) {
					t.Errorf("validating webhook %s: namespaceSelector %+v, want %+v", wh.Name, wh.NamespaceSelector, want)
				}
			}
		})
	}
}
