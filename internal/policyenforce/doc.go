// Package policyenforce is the node agent's enforcement of network policy: it keeps one
// nftables table (netpol.NFTTable, family inet) on the node equal to what the policy layers
// (ClusterNetworkPolicy Admin tier, NetworkPolicy, Baseline tier; internal/netpol) say about
// the node's pods, and replaces it whole, in one nft transaction, at every change. Where the
// API server serves Calico's projectcalico.org/v3 policies and one exists, Calico's default
// tier (its policies and the NetworkPolicies at order 1000, netpol.WithCalico) takes the
// NetworkPolicy layer's place, as `podsg reach` evaluates them; the ServiceAccounts are watched
// for the labels Calico's serviceAccounts selectors match.
//
// Where packets are judged. Every pod of the node, regular or on a branch ENI, has a host-side
// veth (internal/podnet): "eni…" for regular pods and standard-mode branch pods, "vlan…" for
// strict-mode branch pods. Whatever policy routing does next, each packet from the pod enters
// the node on that veth and each packet to the pod leaves on it: strict mode sends the pod's
// traffic on through the trunk's sub-interface (vlan.eth.N) and takes its answers from there,
// standard mode routes between the veth and the main table; either way the packet crosses the
// forward hook with the veth as iif or oif, or input/output when the node itself is the other
// end (the kubelet's probes: in strict mode they leave the node and come back through the
// trunk, so they are judged on forward too). The ruleset matches the veth by name, so both
// directions of both modes are judged by the same chains. The filter chains run at priority 0,
// after kube-proxy's DNAT (prerouting and output at priority dstnat, -100, in its iptables and
// nftables modes): a connection to a ClusterIP is judged on the backend pod it was sent to.
// Return traffic passes as ct state established,related.
//
// No window at start-up. Two things together, either of which alone keeps a new pod
// isolated: (1) the table drops every packet on a pod veth (the agent's --veth-prefix and
// "vlan" patterns, not the trunk's sub-interfaces) that no known pod owns, so a pod the agent
// has not compiled yet sends and receives nothing; (2) the CNI ADD does not return until a
// ruleset that knows the pod (its veth, its address, its labels) is installed (Enforcer.Admit),
// so a pod does not start without its rules, and does not start blackholed either. The veth
// exists only after the ADD's answer, so no packet of the pod can come before (2).
//
// Restart loses nothing. The table is never deleted: the agent leaves it in place when it
// stops, and its first sync after start replaces it in one transaction (nft's "table; delete
// table; table {…}" in one script) once the watches have synced and the node's pod records
// are loaded. Named counters are carried across each replacement (read, then declared with
// their values in the new table), so podsg_netpol_denied_packets_total does not restart at 0;
// packets dropped between the read and the replace (microseconds) are not counted.
//
// Known gaps: a peer is matched by address, so a pod on another node counts as a peer only once
// the API server reports its IP (allow rules fail closed in between; a Deny rule that names
// such a pod on ingress is not applied until then, as in other address-based implementations);
// a policy change does not cut connections already established.
//
// nftables rather than eBPF: the project already programs nftables and needs no compiler or
// BPF loader, and BenchmarkPolicyDatapath finds nothing an eBPF program could win: established
// packets skip every rule, and a SYN that crosses 1,000 rules costs no more than this machine's
// noise. A tc-eBPF program was not measured itself. BenchmarkEnforceApply and
// BenchmarkPolicyEnforcedOnEveryNode measure recompiling and replacing the ruleset (one node,
// and 10 nodes from a policy's creation in the API server).
package policyenforce
