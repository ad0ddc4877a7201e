package controller

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
)

// CacheOptions are the options of podsg-controller's object cache: pods and nodes are kept
// without their managedFields, which podsg never reads and which are a large part of each
// object as the apiserver sends it, and pods without the rest of what podsg never reads
// (PodForCache). After a restart the cache decodes and holds every pod of the cluster
// (34,000 in the 1,700-node benchmark, 100,000 in the size benchmark) before any controller
// starts.
func CacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Transform: func(o any) (any, error) {
			o, err := strip(o)
			if p, ok := o.(*corev1.Pod); ok && err == nil {
				PodForCache(p)
			}
			return o, err
		}},
		&corev1.Node{}: {Transform: strip},
	}}
}

// PodForCache trims a pod, in place, to what podsg-controller reads of it: its metadata
// without owner references and with podsg's own annotations only (other controllers'
// annotations can be kilobytes a pod), the node, ServiceAccount, host network and OS it runs
// with (internal/policy, internal/netpol), each container's name, ports and pod-eni request and limit (NetworkPolicy's named ports;
// whether the pod asks for a branch), its phase, addresses and when it was scheduled. What goes (volumes, environment,
// probes, tolerations, affinity, container statuses, the other conditions) was most of a
// running pod's bytes: 100,000 of them must fit the controller's memory. Every write of
// podsg-controller to a pod is a patch of its own fields, never an update of a cached
// object, so nothing trimmed here is ever written back.
func PodForCache(p *corev1.Pod) {
	p.OwnerReferences = nil
	p.Annotations = ownAnnotations(p.Annotations)
	s := p.Spec
	p.Spec = corev1.PodSpec{NodeName: s.NodeName, ServiceAccountName: s.ServiceAccountName, HostNetwork: s.HostNetwork,
		OS: s.OS, NodeSelector: s.NodeSelector, Containers: trimContainers(s.Containers),
		InitContainers: trimContainers(s.InitContainers)}
	st := p.Status
	p.Status = corev1.PodStatus{Phase: st.Phase, PodIP: st.PodIP, PodIPs: st.PodIPs, HostIP: st.HostIP, HostIPs: st.HostIPs}
	for _, c := range st.Conditions {
		if c.Type == corev1.PodScheduled {
			c.Message, c.Reason = "", ""
			p.Status.Conditions = append(p.Status.Conditions, c)
		}
	}
}

func trimContainers(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Ports: c.Ports, Resources: podENIOnly(c.Resources), RestartPolicy: c.RestartPolicy}
	}
	return out
}

// podENIOnly keeps the vpc.amazonaws.com/pod-eni request and limit, the only resources podsg
// reads: two maps a container were the largest part of a trimmed pod.
func podENIOnly(r corev1.ResourceRequirements) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
	if q, ok := r.Requests[v1beta1.ResourcePodENI]; ok {
		out.Requests = corev1.ResourceList{v1beta1.ResourcePodENI: q}
	}
	if q, ok := r.Limits[v1beta1.ResourcePodENI]; ok {
		out.Limits = corev1.ResourceList{v1beta1.ResourcePodENI: q}
	}
	return out
}

// ownAnnotations keeps the annotations podsg-controller reads of a cached pod: the groups the
// webhook gave it and the branch ENI it was given. nil when it has neither, and a as it is when
// it has nothing else (no copy).
func ownAnnotations(a map[string]string) map[string]string {
	own := 0
	for _, k := range []string{v1beta1.AnnotationSecurityGroups, v1beta1.AnnotationPodENI} {
		if _, ok := a[k]; ok {
			own++
		}
	}
	switch {
	case own == len(a):
		return a
	case own == 0:
		return nil
	}
	out := make(map[string]string, own)
	for _, k := range []string{v1beta1.AnnotationSecurityGroups, v1beta1.AnnotationPodENI} {
		if v, ok := a[k]; ok {
			out[k] = v
		}
	}
	return out
}
