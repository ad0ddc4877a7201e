package reach

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// Cluster is what LoadPolicies reads of Kubernetes (a controller-runtime client, whose scheme
// knows core, networking, ClusterNetworkPolicy and Calico's types).
type Cluster interface {
	List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error
}

// Policies is the cluster's policy state: every layer, and the pods and nodes their
// selectors and the endpoints resolve against.
type Policies struct {
	Evaluator *netpol.Evaluator
	Pods      []*netpol.Pod
	Nodes     []*netpol.Node
	// NotServed names the policy APIs the cluster does not serve (their CRD is not
	// installed): they hold no policy, which the explanation says.
	NotServed []string
	// Set is every policy the cluster holds; Refused are those of them podsg-agent does not
	// enforce (netpol.PolicySet.Enforced), which the Evaluator leaves out as the agent does.
	Set     netpol.PolicySet
	Refused []netpol.Refusal
}

// LoadPolicies lists the namespaces, service accounts, pods, nodes and the policies of every
// layer (ClusterNetworkPolicy, NetworkPolicy, Calico's GlobalNetworkPolicy and
// NetworkPolicy) and builds the evaluator: Admin tier, Calico's default tier with the
// NetworkPolicies at order 1000, Baseline tier. It holds the policies podsg-agent enforces:
// one the agent refuses is left out, as on the nodes, and listed in Refused for the
// explanation to name.
func LoadPolicies(ctx context.Context, c Cluster) (*Policies, error) {
	out := &Policies{}
	var nss corev1.NamespaceList
	var sas corev1.ServiceAccountList
	var pods corev1.PodList
	var nodes corev1.NodeList
	var nps networkingv1.NetworkPolicyList
	for what, l := range map[string]client.ObjectList{"namespaces": &nss, "service accounts": &sas, "pods": &pods, "nodes": &nodes, "NetworkPolicies": &nps} {
		if err := c.List(ctx, l); err != nil {
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
	}
	var cnps cnpv1.ClusterNetworkPolicyList
	var gnps calicov3.GlobalNetworkPolicyList
	var calicoNPs calicov3.NetworkPolicyList
	for what, l := range map[string]client.ObjectList{"ClusterNetworkPolicy (policy.networking.k8s.io)": &cnps,
		"GlobalNetworkPolicy (projectcalico.org)": &gnps, "NetworkPolicy (projectcalico.org)": &calicoNPs} {
		err := c.List(ctx, l)
		switch {
		case meta.IsNoMatchError(err):
			out.NotServed = append(out.NotServed, what)
		case err != nil:
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
	}
	slices.Sort(out.NotServed) // listed from a map: in a stable order for the explanation
	out.Pods = netpol.PodsFromLists(&pods, &nss, &sas)
	for i := range nodes.Items {
		out.Nodes = append(out.Nodes, netpol.NodeFrom(&nodes.Items[i]))
	}
	out.Set = netpol.PolicySet{NetworkPolicies: nps.Items, ClusterPolicies: cnps.Items,
		GlobalNetworkPolicies: gnps.Items, CalicoNetworkPolicies: calicoNPs.Items}
	var enforced netpol.PolicySet
	enforced, out.Refused = out.Set.Enforced()
	var err error
	out.Evaluator, err = netpol.WithCalico(enforced.ClusterPolicies, enforced.NetworkPolicies, enforced.GlobalNetworkPolicies, enforced.CalicoNetworkPolicies)
	return out, err
}

// Findings are netpol.Check's findings on the cluster's policies: the ones podsg-controller
// records as events, computed by the same function from the same objects.
func (p *Policies) Findings() []netpol.Finding {
	return netpol.Check(p.Set, p.Pods)
}

// Endpoint is what policies see at one end: the pod the user named, else the pod or node
// holding the address, else an address outside the cluster.
func (p *Policies) Endpoint(e Endpoint) netpol.Endpoint {
	out := netpol.Endpoint{IP: e.IP}
	if ns, name, ok := strings.Cut(strings.TrimPrefix(e.Spec, PodPrefix), "/"); ok && strings.HasPrefix(e.Spec, PodPrefix) {
		for _, pod := range p.Pods {
			if pod.Namespace == ns && pod.Name == name {
				out.Pod = pod
			}
		}
	}
	if out.Pod == nil {
		out.Pod = p.podAt(e.IP)
	}
	for _, n := range p.Nodes {
		if n.Name != "" && (out.Pod != nil && out.Pod.HostNetwork && out.Pod.NodeName == n.Name || out.Pod == nil && hasAddr(n.IPs, e.IP)) {
			out.Node = n
		}
	}
	return out
}

// podAt is the pod with the address (not a host-network pod: those share their node's).
func (p *Policies) podAt(ip netip.Addr) *netpol.Pod {
	for _, pod := range p.Pods {
		if !pod.HostNetwork && hasAddr(pod.IPs, ip) {
			return pod
		}
	}
	return nil
}

func hasAddr(ips []netip.Addr, ip netip.Addr) bool { return slices.Contains(ips, ip) }

// Judge evaluates every policy layer for the flow between the two ends.
func (p *Policies) Judge(src, dst Endpoint, f Flow) netpol.Result {
	c := netpol.Connection{Src: p.Endpoint(src), Dst: p.Endpoint(dst), Port: int32(f.Port)} //nolint:gosec // Flow.Validate bounds it to 0..65535
	switch f.Protocol {
	case cloud.ProtocolTCP:
		c.Protocol = corev1.ProtocolTCP
	case cloud.ProtocolUDP:
		c.Protocol = corev1.ProtocolUDP
	default:
		c.Protocol, c.Port = netpol.ProtocolICMP, 0
	}
	return p.Evaluator.Evaluate(c)
}

// Selecting lists, for a pod, the policies of every layer that apply to it.
func (p *Policies) Selecting(pod *netpol.Pod) []netpol.Selection {
	return p.Evaluator.Selecting(pod)
}
