// Package podnet does the kernel work of a pod's network on a node: the veth pair, the trunk
// sub-interface of a branch pod, its route table and policy rules, and their removal. It acts
// only on what a podstate.Record describes, so that teardown needs nothing but the record.
//
// Layout on the node, after AWS's VPC CNI (see docs/architecture.md):
//
//	regular pod: eth0 (pod, IP/32, default via 169.254.1.1) ── veth ── <hostVeth> (node)
//	             main table: IP/32 dev <hostVeth>
//	branch pod:  eth0 (pod) ── veth ── <hostVeth> (node) ── policy routing ── <subif> on the trunk
//	             table vlan+base: gw/32 dev <subif>, default via gw dev <subif>
//	             strict:   rules iif <subif> and iif <hostVeth> → table; IP/32 dev <hostVeth> in table
//	             standard: rules to IP → main (512), from IP → table (1536); IP/32 dev <hostVeth> in main
//
// Strict mode also relies on two node-wide settings that the agent makes (internal/agent/node.go):
// the local table's rule at priority 20, behind the pods' priority-10 rules, and
// tcp_early_demux=0. modes_test.go shows the modes' documented traffic paths by packets.
package podnet
