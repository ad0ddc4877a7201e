package policystatus

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/testenv"
)

// TestPodsStanding: a policy's status counts its pods by how their groups stand against the
// groups their policies give them now.
func TestPodsStanding(t *testing.T) {
	const ns, a, b = "default", "sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"
	pod := func(name string, shape func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		shape(p)
		return p
	}
	branch := func(groups ...string) func(p *corev1.Pod) {
		return func(p *corev1.Pod) {
			policy.RequestBranchENI(p)
			p.Annotations = map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(groups),
				v1beta1.AnnotationPodENI: `[{"eniId":"eni-1","ifAddress":"02:00:00:00:00:01","privateIp":"10.0.0.9","vlanId":1,"subnetCidr":"10.0.0.0/24"}]`}
		}
	}
	tests := map[string]struct {
		pod  *corev1.Pod
		want v1beta1.PodGroupsStatus
	}{
		"its branch carries the groups, in any order": {pod: pod("p", branch(b, a)), want: v1beta1.PodGroupsStatus{Current: 1}},
		"its branch carries other groups":             {pod: pod("p", branch(a)), want: v1beta1.PodGroupsStatus{Pending: 1}},
		"awaiting its branch": {pod: pod("p", func(p *corev1.Pod) { policy.RequestBranchENI(p) }),
			want: v1beta1.PodGroupsStatus{Pending: 1}},
		"on its node's ENI": {pod: pod("p", func(*corev1.Pod) {}), want: v1beta1.PodGroupsStatus{NeedRecreation: 1}},
		"a limit alone asks for a branch": {pod: pod("p", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}
		}), want: v1beta1.PodGroupsStatus{Pending: 1}},
		"finished": {pod: pod("p", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sgp := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
				Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					SecurityGroups: v1beta1.GroupIDs{Groups: []string{a, b}}}}
			kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(sgp, tc.pod).
				WithStatusSubresource(&v1beta1.SecurityGroupPolicy{}).Build()
			ec2 := fake.New()
			for _, g := range []string{a, b} {
				ec2.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: "vpc-1"})
			}
			c := New(kube, ec2, events.NewFakeRecorder(10), Options{VPCID: "vpc-1", SecurityGroupsPerENI: 5})
			if _, err := c.Reconcile(t.Context(), sgp); err != nil {
				t.Fatal(err)
			}
			got := &v1beta1.SecurityGroupPolicy{}
			if err := kube.Get(t.Context(), client.ObjectKeyFromObject(sgp), got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Pods == nil || *got.Status.Pods != tc.want {
				t.Fatalf("status.pods = %+v, want %+v", got.Status.Pods, tc.want)
			}
		})
	}
}

// TestGroupsCheckedOncePerRecheck: reconciles of a policy (pods coming and going) ask EC2 for
// its groups again only when the groups change or Recheck has passed since the last check.
func TestGroupsCheckedOncePerRecheck(t *testing.T) {
	const ns, a, b = "default", "sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"
	sgp := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{},
			SecurityGroups: v1beta1.GroupIDs{Groups: []string{a}}}}
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(sgp).
		WithStatusSubresource(&v1beta1.SecurityGroupPolicy{}).Build()
	ec2 := fake.New()
	for _, g := range []string{a, b} {
		ec2.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: "vpc-1"})
	}
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	c := New(kube, ec2, events.NewFakeRecorder(10), Options{VPCID: "vpc-1", SecurityGroupsPerENI: 5,
		Recheck: 10 * time.Minute, Now: func() time.Time { return now }})
	steps := []struct {
		name  string
		do    func()
		calls int // DescribeSecurityGroups so far
	}{
		{"first reconcile", func() {}, 1},
		{"again, nothing changed", func() {}, 1},
		{"a minute later", func() { now = now.Add(time.Minute) }, 1},
		{"the groups change", func() { sgp.Spec.SecurityGroups.Groups = []string{a, b} }, 2},
		{"the same groups in another order", func() { sgp.Spec.SecurityGroups.Groups = []string{b, a} }, 2},
		{"Recheck later", func() { now = now.Add(10 * time.Minute) }, 3},
	}
	for _, s := range steps {
		s.do()
		if _, err := c.Reconcile(t.Context(), sgp.DeepCopy()); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := ec2.Calls("DescribeSecurityGroups"); got != s.calls {
			t.Fatalf("%s: %d DescribeSecurityGroups calls, want %d", s.name, got, s.calls)
		}
	}
	// A deleted policy's check goes with it; one created again under its name is checked anew.
	req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(sgp)}
	if err := kube.Delete(t.Context(), sgp.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.reconcileRequest(t.Context(), req); err != nil {
		t.Fatalf("reconciling a deleted policy: %v", err)
	}
	if n := len(c.checked); n != 0 {
		t.Fatalf("%d group checks kept after the policy's deletion", n)
	}
	again := sgp.DeepCopy()
	again.ResourceVersion = ""
	if err := kube.Create(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if _, err := c.reconcileRequest(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if got := ec2.Calls("DescribeSecurityGroups"); got != 4 {
		t.Fatalf("the policy created again: %d DescribeSecurityGroups calls, want 4", got)
	}
}

// TestPodChangesSettle: changes of pods enqueue every policy of their namespace once, Settle
// after the first change, however many came in between.
func TestPodChangesSettle(t *testing.T) {
	policies := []client.Object{
		&v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "one"}},
		&v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "two"}},
		&v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "other"}},
	}
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(policies...).Build()
	c := New(kube, fake.New(), events.NewFakeRecorder(10), Options{Settle: time.Second})
	clk := clocktesting.NewFakeClock(time.Now())
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clk})
	defer q.ShutDown()
	h := c.settled()
	for i := range 50 {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: fmt.Sprint("p", i)}}
		h.Create(t.Context(), event.CreateEvent{Object: pod}, q)
		h.Update(t.Context(), event.UpdateEvent{ObjectOld: pod, ObjectNew: pod}, q)
	}
	if q.Len() != 0 {
		t.Fatalf("%d policies queued at once, want none before Settle", q.Len())
	}
	clk.Step(time.Second)
	testenv.Eventually(t, 10*time.Second, func(context.Context) error {
		if q.Len() < 2 {
			return fmt.Errorf("%d policies queued, want a's two", q.Len())
		}
		return nil
	})
	var got []string
	for q.Len() > 0 {
		r, _ := q.Get()
		got = append(got, r.Name)
		q.Done(r)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("queued %v, want [one two], each once", got)
	}
}
