package netpol

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// PodFrom is what policies see of a Kubernetes pod, given its namespace's labels and its
// ServiceAccount's labels (nil when unknown). Addresses that do not parse are left out.
func PodFrom(p *corev1.Pod, namespaceLabels, serviceAccountLabels map[string]string) *Pod {
	out := &Pod{Namespace: p.Namespace, Name: p.Name, NodeName: p.Spec.NodeName, Labels: p.Labels,
		NamespaceLabels: namespaceLabels, ServiceAccount: p.Spec.ServiceAccountName,
		ServiceAccountLabels: serviceAccountLabels, HostNetwork: p.Spec.HostNetwork}
	if out.ServiceAccount == "" {
		out.ServiceAccount = "default"
	}
	for _, c := range p.Spec.Containers {
		out.Ports = append(out.Ports, c.Ports...)
	}
	ips := p.Status.PodIPs
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: p.Status.PodIP}}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out.IPs = append(out.IPs, a)
		}
	}
	return out
}

// Labels indexes the labels that policies select a pod by besides its own: its namespace's
// and its ServiceAccount's. Every reader of the cluster (the agent's enforcer, the
// controller's feedback, podsg reach) sees pods through it, so that they agree on who is who.
type Labels struct {
	namespaces      map[string]map[string]string
	serviceAccounts map[string]map[string]string // by namespace/name
}

// AddNamespace records a namespace's labels.
func (l *Labels) AddNamespace(ns *corev1.Namespace) {
	if l.namespaces == nil {
		l.namespaces = map[string]map[string]string{}
	}
	l.namespaces[ns.Name] = ns.Labels
}

// AddServiceAccount records a ServiceAccount's labels.
func (l *Labels) AddServiceAccount(sa *corev1.ServiceAccount) {
	if l.serviceAccounts == nil {
		l.serviceAccounts = map[string]map[string]string{}
	}
	l.serviceAccounts[sa.Namespace+"/"+sa.Name] = sa.Labels
}

// Pod is what policies see of p, with its namespace's and ServiceAccount's labels; nil for a
// pod that has finished: no policy applies to it any more, and its address may be another
// pod's already.
func (l *Labels) Pod(p *corev1.Pod) *Pod {
	if Finished(p) {
		return nil
	}
	out := PodFrom(p, l.namespaces[p.Namespace], nil)
	out.ServiceAccountLabels = l.serviceAccounts[p.Namespace+"/"+out.ServiceAccount]
	return out
}

// Finished says whether a pod has ended (Succeeded or Failed): policies no longer see it.
func Finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// PodsFromLists is what policies see of the listed pods (finished ones left out).
func PodsFromLists(pods *corev1.PodList, namespaces *corev1.NamespaceList, serviceAccounts *corev1.ServiceAccountList) []*Pod {
	var l Labels
	for i := range namespaces.Items {
		l.AddNamespace(&namespaces.Items[i])
	}
	for i := range serviceAccounts.Items {
		l.AddServiceAccount(&serviceAccounts.Items[i])
	}
	out := make([]*Pod, 0, len(pods.Items))
	for i := range pods.Items {
		if p := l.Pod(&pods.Items[i]); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// NodeFrom is what policies see of a Kubernetes node: its name, labels and internal and
// external addresses.
func NodeFrom(n *corev1.Node) *Node {
	out := &Node{Name: n.Name, Labels: n.Labels}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		// An address may be both internal and external: once, so that a ruleset's set of
		// them holds no duplicate.
		if ip, err := netip.ParseAddr(a.Address); err == nil && !slices.Contains(out.IPs, ip) {
			out.IPs = append(out.IPs, ip)
		}
	}
	return out
}
