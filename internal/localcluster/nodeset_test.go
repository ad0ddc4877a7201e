package localcluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func specs(indices ...int) []nodeSpec {
	var out []nodeSpec
	for _, i := range indices {
		out = append(out, nodeSpec{Index: i, Name: "n" + string(rune('0'+i)), InstanceID: "i-" + string(rune('0'+i))})
	}
	return out
}

func indicesOf(nodes []nodeSpec) []int {
	var out []int
	for _, n := range nodes {
		out = append(out, n.Index)
	}
	return out
}

func TestSubnetOfSpreadsNodes(t *testing.T) {
	for index, want := range map[int]int{1: 0, 2: 1, 3: 0, 4: 1, 7: 0} {
		if got := subnetOf(index); got != want {
			t.Errorf("subnetOf(%d) = %d, want %d", index, got, want)
		}
	}
}

func TestWantedIndices(t *testing.T) {
	for _, tc := range []struct {
		name     string
		want     int
		recorded []nodeSpec
		out      []int
	}{
		{"fresh", 2, nil, []int{1, 2}},
		{"an added node stays", 2, specs(1, 2, 3), []int{1, 2, 3}},
		{"a removed node comes back", 2, specs(2, 3), []int{1, 2, 3}},
		{"more wanted than recorded", 3, specs(1), []int{1, 2, 3}},
		{"older records without index", 1, []nodeSpec{{Name: "a"}, {Name: "b"}}, []int{1, 2}},
	} {
		if got := wantedIndices(tc.want, tc.recorded); !slices.Equal(got, tc.out) {
			t.Errorf("%s: wantedIndices(%d) = %v, want %v", tc.name, tc.want, got, tc.out)
		}
	}
}

func TestNextIndexFillsTheFirstGap(t *testing.T) {
	for _, tc := range []struct {
		recorded []nodeSpec
		want     int
	}{{nil, 1}, {specs(1, 2), 3}, {specs(2, 3), 1}, {specs(1, 3), 2}} {
		if got := nextIndex(tc.recorded); got != tc.want {
			t.Errorf("nextIndex(%v) = %d, want %d", indicesOf(tc.recorded), got, tc.want)
		}
	}
}

func TestWithAndWithoutNode(t *testing.T) {
	got := withNode(specs(3, 1), nodeSpec{Index: 2, Name: "new"})
	if !slices.Equal(indicesOf(got), []int{1, 2, 3}) {
		t.Errorf("withNode: indices %v, want sorted 1 2 3", indicesOf(got))
	}
	got = withNode(got, nodeSpec{Index: 2, Name: "replaced", InstanceID: "i-new"})
	if len(got) != 3 || got[1].InstanceID != "i-new" {
		t.Errorf("withNode replacing 2: %+v", got)
	}
	got = withoutNode(got, nodeSpec{Index: 2})
	if !slices.Equal(indicesOf(got), []int{1, 3}) {
		t.Errorf("withoutNode: indices %v, want 1 3", indicesOf(got))
	}
	if old, ok := recordOf(specs(1, 3), 3); !ok || old.Index != 3 {
		t.Errorf("recordOf 3: %+v %v", old, ok)
	}
	if _, ok := recordOf(specs(1, 3), 2); ok {
		t.Error("recordOf 2 found a record")
	}
}

func TestFindNode(t *testing.T) {
	nodes := []nodeSpec{{Index: 1, Name: "ip-10-0-0-5.us-west-2.compute.internal", InstanceID: "i-0abc"}}
	for _, key := range []string{"ip-10-0-0-5.us-west-2.compute.internal", "ip-10-0-0-5", "i-0abc"} {
		if n, err := findNode(nodes, key); err != nil || n.InstanceID != "i-0abc" {
			t.Errorf("findNode(%q) = %+v, %v", key, n, err)
		}
	}
	if _, err := findNode(nodes, "ip-10-0-0-6"); err == nil || !strings.Contains(err.Error(), "the nodes are ip-10-0-0-5.us-west-2.compute.internal") {
		t.Errorf("findNode of an unknown node: %v, want the list of nodes", err)
	}
	if _, err := findNode(nil, "x"); err == nil || !strings.Contains(err.Error(), "has no nodes") {
		t.Errorf("findNode without nodes: %v", err)
	}
}

func TestNotReadyOf(t *testing.T) {
	lines := "a\tTrue\tkubelet is posting ready status\nb\tFalse\tcontainer runtime network not ready\nc\tUnknown\t\n"
	want := []string{"b (container runtime network not ready)", "d (not registered)"}
	if got := notReadyOf(lines, []string{"a", "b", "d"}); !slices.Equal(got, want) {
		t.Errorf("notReadyOf = %q, want %q", got, want)
	}
}

func TestProviderIDAndZone(t *testing.T) {
	if got := (nodeSpec{InstanceID: "i-1", AZ: "us-west-2b"}).providerID(); got != "aws:///us-west-2b/i-1" {
		t.Errorf("providerID = %s", got)
	}
	if got := (nodeSpec{InstanceID: "i-1"}).providerID(); got != "aws:///us-west-2a/i-1" {
		t.Errorf("providerID of an older record = %s, want the first zone", got)
	}
}

func TestDescribeENIs(t *testing.T) {
	eni := func(id string, typ types.NetworkInterfaceType) types.NetworkInterface {
		return types.NetworkInterface{NetworkInterfaceId: aws.String(id), InterfaceType: typ}
	}
	for _, tc := range []struct {
		enis []types.NetworkInterface
		want string
	}{
		{nil, "no trunk and 0 branch ENIs"},
		{[]types.NetworkInterface{eni("eni-t", types.NetworkInterfaceTypeTrunk), eni("eni-b", types.NetworkInterfaceTypeBranch)}, "trunk eni-t and 1 branch ENI"},
		{[]types.NetworkInterface{eni("eni-b1", types.NetworkInterfaceTypeBranch), eni("eni-t", types.NetworkInterfaceTypeTrunk), eni("eni-b2", types.NetworkInterfaceTypeBranch)}, "trunk eni-t and 2 branch ENIs"},
	} {
		if got := describeENIs(tc.enis); got != tc.want {
			t.Errorf("describeENIs = %q, want %q", got, tc.want)
		}
	}
}
