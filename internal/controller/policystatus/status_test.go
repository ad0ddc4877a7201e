package policystatus

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

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
