package netpol

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/policy"
)

// PodFrom is what policies see of a Kubernetes pod, given its namespace's labels and its
// ServiceAccount's labels (nil when unknown). Addresses that do not parse are left out.
func PodFrom(p *corev1.Pod, namespaceLabels, serviceAccountLabels map[string]string) *Pod {
	out := &Pod{Namespace: p.Namespace, Name: p.Name, NodeName: p.Spec.NodeName, Labels: p.Labels,
		NamespaceLabels: namespaceLabels, ServiceAccount: p.Spec.ServiceAccountName,
		ServiceAccountLabels: serviceAccountLabels, HostNetwork: p.Spec.HostNetwork, Finished: policy.Terminal(p)}
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
