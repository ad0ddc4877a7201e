// Package worldtest is podsg-controller's surroundings for synchronous tests: the
// controller-runtime fake client for the apiserver, the stateful EC2 fake (internal/cloud/fake)
// and a fake clock, with one incarnation of the controller on them (the trunk and branch
// controllers, the releaser and the sweeper on one inventory). Tests drive them one reconcile,
// release or sweep at a time, as Karpenter's ExpectObjectReconciled does, and check what the
// apiserver and EC2 hold afterwards. They need neither root nor the Kubernetes binaries and run
// in milliseconds; the real-apiserver tests in internal/controller cover the wiring.
package worldtest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/controller/warm"
	"github.com/podsg/podsg/internal/testenv"
)

// The world's fixed facts.
const (
	Cluster      = "test-cluster"
	VPCID        = "vpc-0123456789abcdef0"
	SubnetID     = "subnet-0123456789abcdef0"
	SubnetCIDR   = "10.0.0.0/19"
	InstanceType = "m5.large"
	// BranchLimit is the limits table's entry for InstanceType here: small, to reach it.
	BranchLimit = 4
	// NodeGroup is the security group of every instance's primary ENI.
	NodeGroup     = "sg-0000000000000node"
	Cooldown      = time.Minute
	SweepInterval = 5 * time.Minute // the sweeper's default
	IdleTTL       = 10 * time.Minute
	RetryAfter    = time.Minute // the warmer's rest after a failure
)

// Groups are the groups admission resolves for the pods NewPod creates; OtherGroups another
// set, in the VPC too.
var (
	Groups      = []string{"sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"}
	OtherGroups = []string{"sg-0cccccccccccccccc"}
)

// Options shape the controller incarnations of a world; the zero value is podsg-controller's
// defaults.
type Options struct {
	// NoReuse deletes branches after their cool-down instead of parking them.
	NoReuse bool
	// Targets are the warm targets the releaser keeps; nil for the warmer's (the policies').
	Targets branch.Targets
	// WarmDefault is the warm target of policies that set none.
	WarmDefault int
	// Budget, when set, says whether warming may spend a call; nil always lets it.
	Budget warm.Budget
	// TrunkWanted is told the nodes pods wait on for a trunk (Setup wires it to the trunk
	// controller's queue).
	TrunkWanted func(nodeName string)
}

// World is the surroundings and one incarnation of podsg-controller.
type World struct {
	t       *testing.T
	tracker clienttesting.ObjectTracker

	Kube  client.Client
	EC2   *fake.EC2
	Clock *clocktesting.FakeClock

	// The current incarnation; Restart replaces it.
	Store    *inventory.Store
	Trunks   *trunk.Controller
	Pods     *branch.Controller
	Releaser *branch.Releaser
	Sweeper  *branch.Sweeper
	Warmer   *warm.Warmer
	Updater  *branch.Updater
	recorder *Recorder

	opts                Options
	instances, podsMade int
}

// New returns a world with a subnet, the node group, Groups and OtherGroups in EC2, and a
// first incarnation with podsg-controller's defaults.
func New(t *testing.T) *World { t.Helper(); return NewWith(t, Options{}) }

// NewWith is New with incarnations shaped by opts.
func NewWith(t *testing.T, opts Options) *World {
	t.Helper()
	f := fake.New()
	f.AddSubnet(cloud.Subnet{ID: SubnetID, VPCID: VPCID, CIDR: SubnetCIDR, AvailabilityZone: "us-west-2a"})
	for _, g := range slices.Concat([]string{NodeGroup}, Groups, OtherGroups) {
		f.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: VPCID})
	}
	scheme := testenv.NewScheme()
	// Our own tracker, so that a pod's graceful deletion can be written as the apiserver does
	// it (the fake client cannot set deletionGracePeriodSeconds).
	tracker := clienttesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
	kube := crfake.NewClientBuilder().WithScheme(scheme).WithObjectTracker(tracker).
		WithStatusSubresource(&corev1.Node{}, &corev1.Pod{}).
		WithIndex(&corev1.Pod{}, trunk.PodNodeIndex, trunk.PodNode).Build()
	w := &World{t: t, tracker: tracker, Kube: kube, EC2: f, Clock: clocktesting.NewFakeClock(time.Now()), opts: opts}
	w.Restart()
	return w
}

// Restart replaces the controller by a fresh incarnation, which knows nothing but what it finds
// in the apiserver and EC2, as a new process after a crash or an upgrade.
func (w *World) Restart() {
	tab := limits.MustDefault()
	tab.Set(InstanceType, BranchLimit)
	w.recorder = &Recorder{}
	w.Store = inventory.NewStore(nil)
	w.Trunks = trunk.New(w.Kube, w.EC2, w.Store, tab, w.recorder, w.Clock, nil, trunk.Options{ClusterName: Cluster, Cooldown: Cooldown})
	w.Pods = branch.New(w.Kube, w.EC2, w.Store, w.recorder, w.Clock, branch.Options{ClusterName: Cluster, Cooldown: Cooldown,
		TrunkWanted: w.opts.TrunkWanted})
	w.Updater = branch.NewUpdater(w.Kube, w.EC2, w.Store, w.recorder)
	w.Warmer = warm.New(w.Kube, w.EC2, w.opts.Budget, w.Store, w.Clock, warm.Options{
		ClusterName: Cluster, Default: w.opts.WarmDefault, RetryAfter: RetryAfter})
	var targets branch.Targets = w.Warmer
	if w.opts.Targets != nil {
		targets = w.opts.Targets
	}
	w.Releaser = branch.NewReleaser(w.EC2, w.Store, w.Clock, branch.ReleaserOptions{
		Interval: time.Second, Reuse: !w.opts.NoReuse, IdleTTL: IdleTTL, Targets: targets})
	w.Sweeper = branch.NewSweeper(w.Kube, w.EC2, w.Store, w.Clock, SweepInterval, Cluster)
}

// Sweep runs one pass of the sweeper. It leaves the clock alone: the passes are an interval
// apart, but what the sweeper decides does not depend on the time, only on what it saw.
func (w *World) Sweep() {
	w.t.Helper()
	if err := w.Sweeper.Sweep(w.t.Context()); err != nil {
		w.t.Fatalf("sweep: %v", err)
	}
}

// Release steps the clock by d and runs the releaser once.
func (w *World) Release(d time.Duration) {
	w.Clock.Step(d)
	w.Releaser.ReleaseDue(w.t.Context())
}

// Warm runs one pass of the warmer.
func (w *World) Warm() {
	w.t.Helper()
	if err := w.Warmer.Warm(w.t.Context()); err != nil {
		w.t.Fatalf("warming: %v", err)
	}
}

// AddPolicy creates a SecurityGroupPolicy of groups selecting every pod of the namespace,
// with a warm target when warm is not nil.
func (w *World) AddPolicy(name string, groups []string, warm *int32) *v1beta1.SecurityGroupPolicy {
	w.t.Helper()
	p := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{},
			SecurityGroups: v1beta1.GroupIDs{Groups: groups}, WarmBranchesPerNode: warm}}
	if err := w.Kube.Create(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// Drain runs the releaser past the cool-down, then past the idle TTL: without reuse a released
// branch is deleted after the first, with reuse it is parked, then deleted after the second
// (above its warm target).
func (w *World) Drain() {
	w.Release(Cooldown)
	w.Release(IdleTTL)
}

// Mutations counts the mutating EC2 calls made so far, failed ones included.
func (w *World) Mutations() int {
	n := 0
	for _, c := range w.EC2.CallLog() {
		if !strings.HasPrefix(c.Action, "Describe") {
			n++
		}
	}
	return n
}

// Event is one event the current incarnation recorded.
type Event struct {
	Object string // namespace/name, or name
	Type   string
	Reason string
	Note   string
}

// Recorder keeps the events the controllers record.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Eventf records an event.
func (r *Recorder) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	e := Event{Type: eventtype, Reason: reason, Note: fmt.Sprintf(note, args...)}
	if m, err := meta.Accessor(regarding); err == nil {
		e.Object = key(m.GetNamespace(), m.GetName())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns the events recorded about object (namespace/name, or name) so far.
func (w *World) Events(object string) []Event {
	w.recorder.mu.Lock()
	defer w.recorder.mu.Unlock()
	var out []Event
	for _, e := range w.recorder.events {
		if e.Object == object {
			out = append(out, e)
		}
	}
	return out
}

// RequireEvent fails the test unless object has an event with reason.
func (w *World) RequireEvent(object, reason string) Event {
	w.t.Helper()
	for _, e := range w.Events(object) {
		if e.Reason == reason {
			return e
		}
	}
	w.t.Fatalf("%s has no %s event; it has %+v", object, reason, w.Events(object))
	return Event{}
}

func key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
