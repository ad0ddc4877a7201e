package controller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/server"
)

// errKilled is what every EC2 call of a killed incarnation returns: the response is lost.
var errKilled = errors.New("podsg-controller killed")

// killer wraps the controller's EC2 and kills its incarnation (cancels the manager) right
// after the first mutating call that took a new effect: one no earlier incarnation saw (an
// idempotent replay, after a restart, of a call whose response was lost is no new step). The
// response of that call, and of every call after it, is lost, as when the process dies with
// requests in flight. Killing each incarnation so walks through every step of every
// allocation.
type killer struct {
	controller.EC2
	effects *sync.Map // effects seen by every incarnation
	dead    atomic.Bool
	once    sync.Once
	kill    func()
	killed  chan struct{}
	mu      sync.Mutex
	victims []string // the actions whose response the kill lost
}

func newKiller(ec2 controller.EC2, effects *sync.Map) (*killer, func(context.CancelFunc) controller.EC2) {
	k := &killer{EC2: ec2, effects: effects, killed: make(chan struct{})}
	return k, func(kill context.CancelFunc) controller.EC2 { k.kill = kill; return k }
}

func (k *killer) isKilled() bool {
	select {
	case <-k.killed:
		return true
	default:
		return false
	}
}

// mutate runs a mutating call; effect names what it did from its result.
func mutate[T any](ctx context.Context, k *killer, action string, fn func(context.Context) (T, error), effect func(T) string) (T, error) {
	var zero T
	if k.dead.Load() {
		return zero, errKilled
	}
	out, err := fn(ctx)
	if k.dead.Load() {
		return zero, errKilled
	}
	if err != nil {
		return out, err
	}
	if _, seen := k.effects.LoadOrStore(action+" "+effect(out), true); !seen {
		k.dead.Store(true)
		k.mu.Lock()
		k.victims = append(k.victims, action)
		k.mu.Unlock()
		k.once.Do(func() { k.kill(); close(k.killed) })
		return zero, errKilled
	}
	return out, nil
}

func describe[T any](ctx context.Context, k *killer, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if k.dead.Load() {
		return zero, errKilled
	}
	return fn(ctx)
}

type none struct{}

func (k *killer) DescribeInstance(ctx context.Context, id string) (cloud.Instance, error) {
	return describe(ctx, k, func(ctx context.Context) (cloud.Instance, error) { return k.EC2.DescribeInstance(ctx, id) })
}

func (k *killer) DescribeInstances(ctx context.Context, ids []string) ([]cloud.Instance, error) {
	return describe(ctx, k, func(ctx context.Context) ([]cloud.Instance, error) { return k.EC2.DescribeInstances(ctx, ids) })
}

func (k *killer) DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error) {
	return describe(ctx, k, func(ctx context.Context) (cloud.Subnet, error) { return k.EC2.DescribeSubnet(ctx, id) })
}

func (k *killer) DescribeSecurityGroups(ctx context.Context, ids []string) ([]cloud.SecurityGroup, error) {
	return describe(ctx, k, func(ctx context.Context) ([]cloud.SecurityGroup, error) {
		return k.EC2.DescribeSecurityGroups(ctx, ids)
	})
}

func (k *killer) DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error) {
	return describe(ctx, k, func(ctx context.Context) ([]cloud.NetworkInterface, error) {
		return k.EC2.DescribeNetworkInterfaces(ctx, f)
	})
}

func (k *killer) DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error) {
	return describe(ctx, k, func(ctx context.Context) ([]cloud.TrunkAssociation, error) {
		return k.EC2.DescribeTrunkInterfaceAssociations(ctx, trunkIDs...)
	})
}

func (k *killer) CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error) {
	return mutate(ctx, k, "CreateNetworkInterface("+in.Type+")", func(ctx context.Context) (cloud.NetworkInterface, error) {
		return k.EC2.CreateNetworkInterface(ctx, in)
	}, func(e cloud.NetworkInterface) string { return e.ID })
}

func (k *killer) DeleteNetworkInterface(ctx context.Context, id string) error {
	_, err := mutate(ctx, k, "DeleteNetworkInterface", func(ctx context.Context) (none, error) {
		return none{}, k.EC2.DeleteNetworkInterface(ctx, id)
	}, func(none) string { return id })
	return err
}

func (k *killer) AttachNetworkInterface(ctx context.Context, eniID, instanceID string, deviceIndex int) (string, error) {
	return mutate(ctx, k, "AttachNetworkInterface", func(ctx context.Context) (string, error) {
		return k.EC2.AttachNetworkInterface(ctx, eniID, instanceID, deviceIndex)
	}, func(id string) string { return id })
}

func (k *killer) DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error {
	_, err := mutate(ctx, k, "DetachNetworkInterface", func(ctx context.Context) (none, error) {
		return none{}, k.EC2.DetachNetworkInterface(ctx, attachmentID, force)
	}, func(none) string { return attachmentID })
	return err
}

func (k *killer) AssociateTrunkInterface(ctx context.Context, trunkID, branchID string, vlan int, token string) (cloud.TrunkAssociation, error) {
	return mutate(ctx, k, "AssociateTrunkInterface", func(ctx context.Context) (cloud.TrunkAssociation, error) {
		return k.EC2.AssociateTrunkInterface(ctx, trunkID, branchID, vlan, token)
	}, func(a cloud.TrunkAssociation) string { return a.ID })
}

func (k *killer) DisassociateTrunkInterface(ctx context.Context, associationID, token string) error {
	_, err := mutate(ctx, k, "DisassociateTrunkInterface", func(ctx context.Context) (none, error) {
		return none{}, k.EC2.DisassociateTrunkInterface(ctx, associationID, token)
	}, func(none) string { return associationID })
	return err
}

func (k *killer) ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error {
	_, err := mutate(ctx, k, "ModifyNetworkInterfaceAttribute", func(ctx context.Context) (none, error) {
		return none{}, k.EC2.ModifyNetworkInterfaceGroups(ctx, eniID, groups)
	}, func(none) string { return fmt.Sprint(eniID, groups) })
	return err
}

func (k *killer) CreateTags(ctx context.Context, ids []string, tags map[string]string) error {
	_, err := mutate(ctx, k, "CreateTags", func(ctx context.Context) (none, error) {
		return none{}, k.EC2.CreateTags(ctx, ids, tags)
	}, func(none) string { return fmt.Sprint(ids, tags) })
	return err
}

// crashProfile throttles (EC2's documented buckets, with much tighter ones for the actions
// of an allocation) and fails a seeded fraction of the mutating calls with 5xx.
func crashProfile(t testing.TB) server.Profile {
	t.Helper()
	p, err := server.LoadProfile("aws")
	if err != nil {
		t.Fatal(err)
	}
	if p.Throttle.Actions == nil {
		p.Throttle.Actions = map[string]server.Bucket{}
	}
	for _, a := range []string{"CreateNetworkInterface", "AssociateTrunkInterface", "AttachNetworkInterface"} {
		p.Throttle.Actions[a] = server.Bucket{Capacity: 1, RefillPerSecond: 1}
		p.Faults.Rules = append(p.Faults.Rules,
			server.FaultRule{Action: a, Probability: 0.25, Code: apierr.CodeInternalError},
			server.FaultRule{Action: a, Probability: 0.1, Code: apierr.CodeUnavailable})
	}
	for _, a := range []string{"DescribeInstances", "DescribeNetworkInterfaces", "DescribeTrunkInterfaceAssociations"} {
		p.Throttle.Actions[a] = server.Bucket{Capacity: 1, RefillPerSecond: 2}
	}
	p.Faults.Rules = append(p.Faults.Rules,
		server.FaultRule{Action: "DescribeNetworkInterfaces", Probability: 0.1, Code: apierr.CodeInternalError},
		server.FaultRule{Action: "DescribeTrunkInterfaceAssociations", Probability: 0.1, Code: apierr.CodeUnavailable})
	p.Faults.Seed = 20240607
	return p
}

// TestCrashSafety kills podsg-controller right after every EC2 mutation of a node's trunk
// setup and of each pod's allocation, on a local VPC that throttles and fails with 5xx, and
// restarts it from nothing but the VPC and the apiserver each time: every pod ends annotated
// with exactly one ENI, and no ENI tagged for the cluster is left without an owner.
func TestCrashSafety(t *testing.T) {
	const pods = 4
	w := startWith(t, options{backend: backendVPC, branchLimit: 9, profile: crashProfile(t), noManager: true})
	ns := "crash"

	var victims []string
	// Incarnation 0 serves the webhook while the pods are admitted, before any node exists.
	effects := &sync.Map{}
	k, wrap := newKiller(w.api, effects)
	m := w.startManager(t, wrap)
	controllertest.Namespace(t, w.c, ns)
	controllertest.Create(t, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(t, w.c, ns)
	for i := range pods {
		controllertest.Create(t, w.c, controllertest.Pod(ns, fmt.Sprint("backend-", i), "rds-db-access"))
	}
	w.addNode(t, "ip-10-0-0-30")

	for incarnation := 0; ; incarnation++ {
		// Wait for this incarnation to be killed, or to finish every allocation unkilled.
		testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
			if k.isKilled() {
				return nil
			}
			return allAllocated(ctx, w, ns, pods)
		})
		killed := k.isKilled()
		m.stop(t)
		if !killed {
			t.Logf("incarnation %d finished every allocation without a mutation to kill after", incarnation)
			break
		}
		victims = append(victims, k.victims...)
		if incarnation > 4*pods+8 {
			t.Fatalf("still killing after %d incarnations (%v): allocations do not converge", incarnation, victims)
		}
		k, wrap = newKiller(w.api, effects)
		m = w.startManager(t, wrap)
	}
	t.Logf("killed after each of: %v", victims)
	for _, want := range []string{"CreateNetworkInterface(trunk)", "AttachNetworkInterface", "CreateNetworkInterface(branch)", "AssociateTrunkInterface"} {
		if !slices.Contains(victims, want) {
			t.Errorf("never killed right after %s", want)
		}
	}
	// A last incarnation finished: check the end state in the VPC and the apiserver.
	m = w.startManager(t, func(context.CancelFunc) controller.EC2 { return w.api })
	defer m.stop(t)
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error { return allAllocated(ctx, w, ns, pods) })
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error { return noOrphans(ctx, w, ns) })
	reqs := vpcRequests(t, w)
	throttled, failed := countCodes(reqs, apierr.CodeRequestLimitExceeded), countCodes(reqs, apierr.CodeInternalError)+countCodes(reqs, apierr.CodeUnavailable)
	t.Logf("the VPC throttled %v calls and failed %v with 5xx", throttled, failed)
	if throttled == 0 || failed == 0 {
		t.Errorf("the VPC must have throttled (%v) and failed with 5xx (%v) during the allocations", throttled, failed)
	}
}

// allAllocated: every pod of ns is annotated with exactly one ENI, and no two share one.
func allAllocated(ctx context.Context, w *world, ns string, want int) error {
	var list corev1.PodList
	if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	if len(list.Items) != want {
		return fmt.Errorf("%d pods, want %d", len(list.Items), want)
	}
	seen := map[string]string{}
	for i := range list.Items {
		p := &list.Items[i]
		enis, ok, err := podENIs(p)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("pod %s (node %q) not annotated yet", p.Name, p.Spec.NodeName)
		case len(enis) != 1:
			return fmt.Errorf("pod %s annotated with %d ENIs", p.Name, len(enis))
		}
		if other, dup := seen[enis[0].ENIID]; dup {
			return fmt.Errorf("ENI %s given to %s and %s", enis[0].ENIID, other, p.Name)
		}
		seen[enis[0].ENIID] = p.Name
	}
	return nil
}

// noOrphans checks the VPC against the apiserver: every ENI tagged for the cluster is a trunk
// of an existing node or a branch a live pod is annotated with, associated with its node's
// trunk on the annotated VLAN and carrying exactly the policy's groups.
func noOrphans(ctx context.Context, w *world, ns string) error {
	var pods corev1.PodList
	if err := w.c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		return err
	}
	annotated := map[string]int{} // ENI → VLAN
	for i := range pods.Items {
		enis, _, err := podENIs(&pods.Items[i])
		if err != nil {
			return err
		}
		for _, e := range enis {
			annotated[e.ENIID] = e.VLANID
		}
	}
	enis, err := w.enis(ctx, "")
	if err != nil {
		return err
	}
	assocs, err := w.associations(ctx)
	if err != nil {
		return err
	}
	byBranch := map[string]cloud.TrunkAssociation{}
	for _, a := range assocs {
		byBranch[a.BranchID] = a
	}
	trunks := map[string]string{} // node → trunk
	for _, e := range enis {
		if e.Type != cloud.InterfaceTypeTrunk {
			continue
		}
		if other, dup := trunks[e.Tags[cloud.TagNode]]; dup {
			return fmt.Errorf("node %s has two trunks: %s and %s", e.Tags[cloud.TagNode], other, e.ID)
		}
		trunks[e.Tags[cloud.TagNode]] = e.ID
		if err := w.c.Get(ctx, client.ObjectKey{Name: e.Tags[cloud.TagNode]}, &corev1.Node{}); err != nil {
			return fmt.Errorf("trunk %s of node %q: %w", e.ID, e.Tags[cloud.TagNode], err)
		}
		if e.InstanceID == "" {
			return fmt.Errorf("trunk %s is not attached", e.ID)
		}
	}
	branches := 0
	for _, e := range enis {
		if e.Type == cloud.InterfaceTypeTrunk {
			continue
		}
		branches++
		vlan, ok := annotated[e.ID]
		if !ok {
			return fmt.Errorf("orphan ENI %s (type %s, tags %v): no pod is annotated with it", e.ID, e.Type, e.Tags)
		}
		a, ok := byBranch[e.ID]
		if !ok || a.VLAN != vlan || a.TrunkID != trunks[e.Tags[cloud.TagNode]] {
			return fmt.Errorf("branch %s: association %+v, want VLAN %d on trunk %s", e.ID, a, vlan, trunks[e.Tags[cloud.TagNode]])
		}
		if !slices.Equal(e.SecurityGroups, w.groups) {
			return fmt.Errorf("branch %s has groups %v, want %v", e.ID, e.SecurityGroups, w.groups)
		}
	}
	if branches != len(annotated) {
		return fmt.Errorf("%d branch ENIs for %d annotated ENIs", branches, len(annotated))
	}
	return nil
}

// noOrphansReusing checks the VPC against the apiserver once branches are reused: every
// branch a live pod is annotated with is associated with its node's trunk on the annotated
// VLAN and carries exactly the pod's groups, whichever pod it was created for; every other
// branch tagged for the cluster is idle on the trunk of an existing node (parked, or cooling
// down before that), never unassociated.
func noOrphansReusing(ctx context.Context, w *world, ns string) error {
	var pods corev1.PodList
	if err := w.c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		return err
	}
	type use struct {
		pod    string
		vlan   int
		groups []string
	}
	annotated := map[string]use{}
	for i := range pods.Items {
		p := &pods.Items[i]
		enis, _, err := podENIs(p)
		if err != nil {
			return err
		}
		for _, e := range enis {
			annotated[e.ENIID] = use{pod: p.Name, vlan: e.VLANID, groups: policy.SplitGroups(p.Annotations[v1beta1.AnnotationSecurityGroups])}
		}
	}
	enis, err := w.enis(ctx, "")
	if err != nil {
		return err
	}
	assocs, err := w.associations(ctx)
	if err != nil {
		return err
	}
	byBranch := map[string]cloud.TrunkAssociation{}
	for _, a := range assocs {
		byBranch[a.BranchID] = a
	}
	trunks := map[string]string{} // node → trunk
	for _, e := range enis {
		if e.Type == cloud.InterfaceTypeTrunk {
			trunks[e.Tags[cloud.TagNode]] = e.ID
		}
	}
	for _, e := range enis {
		if e.Type == cloud.InterfaceTypeTrunk {
			continue
		}
		a, associated := byBranch[e.ID]
		if !associated || a.TrunkID != trunks[e.Tags[cloud.TagNode]] {
			return fmt.Errorf("branch %s (tags %v) is not on its node's trunk: %+v", e.ID, e.Tags, a)
		}
		u, ok := annotated[e.ID]
		if !ok {
			continue // idle
		}
		if a.VLAN != u.vlan {
			return fmt.Errorf("branch %s of pod %s: VLAN %d, annotated %d", e.ID, u.pod, a.VLAN, u.vlan)
		}
		if !inventory.SameGroups(e.SecurityGroups, u.groups) {
			return fmt.Errorf("branch %s of pod %s carries %v, want the pod's %v", e.ID, u.pod, e.SecurityGroups, u.groups)
		}
		delete(annotated, e.ID)
	}
	for id, u := range annotated {
		return fmt.Errorf("pod %s is annotated with %s, which is no branch of the cluster", u.pod, id)
	}
	return nil
}

// vpcRequests sums podsg_vpc_requests_total of a local VPC by action and code.
func vpcRequests(t testing.TB, w *world) map[string]map[string]float64 {
	t.Helper()
	mfs, err := w.vpc.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "podsg_vpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var action, code string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "action":
					action = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			if out[action] == nil {
				out[action] = map[string]float64{}
			}
			out[action][code] += m.GetCounter().GetValue()
		}
	}
	return out
}

// countCodes sums the requests answered with code, over every action.
func countCodes(reqs map[string]map[string]float64, code string) float64 {
	n := 0.0
	for _, byCode := range reqs {
		n += byCode[code]
	}
	return n
}
