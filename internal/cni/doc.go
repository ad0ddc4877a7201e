// Package cni is the podsg CNI plugin: it parses the network configuration, asks the node
// agent (over its unix socket) what a pod's network is, builds it with package podnet, and
// records nothing itself — the agent writes the pod's podstate record, which DEL and CHECK
// read directly, so that teardown works when the agent is down or restarting. A record that
// cannot be read does not block DEL: the plugin tears down by the names it derives and the
// record is set aside (podstate.Store.SetAside). STATUS asks the agent whether it answers.
//
// The binary's main is only the CNI skeleton; stdout is the CNI protocol, so nothing here
// writes to it except the result.
package cni
