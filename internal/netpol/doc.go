// Package netpol decides, for one connection between two endpoints, what every layer of
// Kubernetes network policy says about it, in the order the layers apply, and names the rule
// that decides; and compiles the same model into the nftables ruleset a node enforces.
//
// The layers, in order, for each direction (egress from the source pod, ingress to the
// destination pod) on its own:
//   - the Admin tier of ClusterNetworkPolicy (sigs.k8s.io/network-policy-api v1beta1): the first
//     matching rule, by priority then rule order, accepts, denies, or passes to the next tier;
//   - networking.k8s.io/v1 NetworkPolicy: a pod that a policy selects for the direction is
//     isolated, and the union of the selecting policies' rules allows; nothing else does;
//   - the Baseline tier of ClusterNetworkPolicy;
//   - and when no layer decides, Kubernetes' default: allowed.
//
// A connection goes through when both directions allow it. A Layer is the seam for another
// policy source.
//
// Calico's projectcalico.org/v3 policies (types in calicov3, served as CRDs) are one such
// layer, CalicoTier, which takes the NetworkPolicy layer's place (WithCalico): Calico's default
// tier holds its GlobalNetworkPolicies and NetworkPolicies and, at order 1000 among them as
// Calico itself places them, the Kubernetes NetworkPolicies. Policies apply by order (lower
// first, none last, then name); the first matching rule of an applying policy Allows, Denies,
// Passes (to the Baseline tier) or Logs (and the walk goes on); when policies applied and none
// decided, the tier denies. Selectors are Calico's expressions (calico_selector.go), with the
// labels Calico adds (projectcalico.org/name on namespaces and ServiceAccounts, .../namespace,
// .../serviceaccount, .../orchestrator on pods); serviceAccounts match the ServiceAccount's
// labels (Pod.ServiceAccountLabels). Covered: selector, namespaceSelector,
// serviceAccountSelector, types, order, actions, protocol (TCP, UDP, SCTP, ICMP), ipVersion,
// nets/notNets, selector/notSelector/namespaceSelector/serviceAccounts in rules, destination
// ports/notPorts (numbers, ranges, names). Refused with an error naming the field: tiers other
// than default, icmp/notICMP, notProtocol, other protocols, http, services, source ports, named
// notPorts, host-endpoint options; not served: GlobalNetworkSet, NetworkSet, HostEndpoint and
// Calico's other resources. Log logs nothing yet; global() matches nothing (pods only).
// A pod's own node is not exempt from Calico's policies (Calico has no such exemption), only
// from the Kubernetes NetworkPolicies among them.
//
// Evaluator.Selecting lists the policies of every layer that apply to a pod (podsg explain);
// PodFrom, PodsFromLists and NodeFrom build the model from Kubernetes objects. PolicySet.Enforced
// is the one definition of the policies podsg-agent enforces (each checked alone, a refused
// one left out): the agent, podsg reach and podsg explain evaluate those, and Check reports
// the others as NotEnforced.
//
// It is pure: the caller gives the pods, namespaces' labels, nodes and policies it knows; no
// client, no kernel. Policies are checked when a layer is built, so bad input is an error
// naming the policy and the field, never a silent allow.
//
// CompileNFT turns the same layers into the nftables ruleset a node enforces (Layer.Rules
// resolves each layer's selectors into addresses and named ports into numbers). nftables was
// taken without measuring it against tc eBPF: the project already programs nftables, and the
// measurement belongs with the agent's benchmark. CompileNode adds what a node's agent needs
// (internal/policyenforce): drops of packets on pod interfaces it does not know yet, per-policy
// named counters carried from one table to the next, optional logging. Not yet covered: ClusterNetworkPolicy's
// domainNames peers (they match nothing: an address says nothing of a name without the DNS
// answers), named sets shared between rules (a rule's plain addresses go into one anonymous set), and a policy change
// cutting connections already established (conntrack lets them carry on, as with most
// implementations).
package netpol
