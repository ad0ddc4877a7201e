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
// policy source (Calico's tiers fit as further layers, or in place of the NetworkPolicy layer).
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
