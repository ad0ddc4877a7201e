package controller_test

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/policy"
)

// TestPodForCacheKeepsWhatControllersRead: every reading podsg-controller makes of a pod
// (whether it asks for a branch and in which container, Windows, finished, its ServiceAccount,
// what NetworkPolicy sees of it, when it was scheduled, its metadata) is the same on the
// trimmed pod as on the pod the apiserver sent, and what it never reads is gone.
func TestPodForCacheKeepsWhatControllersRead(t *testing.T) {
	scheduled := metav1.NewTime(time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC))
	running := func(shape func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1",
			Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{v1beta1.AnnotationSecurityGroups: "sg-0aaaaaaaaaaaaaaaa",
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"Pod"}`},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs"}},
			Finalizers:      []string{"podsg.io/branch-eni"}},
			Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "backend",
				Containers: []corev1.Container{{Name: "app", Image: "app:1", Command: []string{"/app"},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Env:   []corev1.EnvVar{{Name: "A", Value: "b"}},
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
						Limits:   corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}},
					VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/secrets"}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}}}},
				Volumes:     []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9", PodIPs: []corev1.PodIP{{IP: "10.0.0.9"}},
				HostIP: "10.0.1.1",
				Conditions: []corev1.PodCondition{
					{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: scheduled},
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: scheduled}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "app:1",
					ContainerID: "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}}}
		shape(p)
		return p
	}
	tests := map[string]*corev1.Pod{
		"running, asking for a branch": running(func(*corev1.Pod) {}),
		"asking in an init container (a sidecar)": running(func(p *corev1.Pod) {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: &always, Image: "proxy:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}}}}
			p.Spec.Containers[0].Resources.Limits = nil
		}),
		"windows by its OS":            running(func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }),
		"windows by its node selector": running(func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelOSStable: "windows"} }),
		"host network":                 running(func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
		"finished":                     running(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		"default ServiceAccount, unscheduled": running(func(p *corev1.Pod) {
			p.Spec.ServiceAccountName, p.Spec.NodeName, p.Status = "", "", corev1.PodStatus{Phase: corev1.PodPending}
		}),
		"given its branch, being deleted": running(func(p *corev1.Pod) {
			p.Annotations[v1beta1.AnnotationPodENI] = `[{"eniId":"eni-0123456789abcdef0"}]`
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &scheduled, new(int64(30))
		}),
		"podsg's annotations only": running(func(p *corev1.Pod) { delete(p.Annotations, "kubectl.kubernetes.io/last-applied-configuration") }),
		"no annotations, no owner": running(func(p *corev1.Pod) { p.Annotations, p.OwnerReferences = nil, nil }),
	}
	// What podsg-controller reads of a pod's metadata: its identity, labels (selectors),
	// finalizers (the branch's), deletion and podsg's own annotations.
	readMeta := func(p *corev1.Pod) []any {
		return []any{p.Namespace, p.Name, p.UID, p.Labels, p.Finalizers, p.DeletionTimestamp, p.DeletionGracePeriodSeconds,
			p.Annotations[v1beta1.AnnotationSecurityGroups], p.Annotations[v1beta1.AnnotationPodENI]}
	}
	scheduledAt := func(p *corev1.Pod) (at metav1.Time) {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
				at = c.LastTransitionTime
			}
		}
		return at
	}
	for name, full := range tests {
		t.Run(name, func(t *testing.T) {
			trimmed := full.DeepCopy()
			controller.PodForCache(trimmed)
			fullENI, fullWants := policy.BranchENIContainer(full)
			eni, wants := policy.BranchENIContainer(trimmed)
			for _, c := range []struct {
				what       string
				full, trim any
			}{
				{"branch ENI container", []any{fullENI, fullWants}, []any{eni, wants}},
				{"windows", policy.IsWindows(full), policy.IsWindows(trimmed)},
				{"terminal", policy.Terminal(full), policy.Terminal(trimmed)},
				{"service account", policy.ServiceAccountName(full), policy.ServiceAccountName(trimmed)},
				{"network policy's view", netpol.PodFrom(full, nil, nil), netpol.PodFrom(trimmed, nil, nil)},
				{"scheduled at", scheduledAt(full), scheduledAt(trimmed)},
				{"metadata", readMeta(full), readMeta(trimmed)},
				{"node", full.Spec.NodeName, trimmed.Spec.NodeName},
			} {
				if !reflect.DeepEqual(c.full, c.trim) {
					t.Errorf("%s: %v on the pod, %v on the trimmed pod", c.what, c.full, c.trim)
				}
			}
			if trimmed.Spec.Volumes != nil || trimmed.Spec.Tolerations != nil || trimmed.Spec.Containers[0].Env != nil ||
				trimmed.Spec.Containers[0].ReadinessProbe != nil || trimmed.Status.ContainerStatuses != nil ||
				len(trimmed.Status.Conditions) > 1 || trimmed.Size() >= full.Size() ||
				trimmed.OwnerReferences != nil || trimmed.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" {
				t.Errorf("trimmed to %d bytes of %d, still %+v", trimmed.Size(), full.Size(), trimmed)
			}
		})
	}
}
