// Package agentapi is the protocol between the CNI plugin and the node agent: JSON over HTTP on
// a unix socket. It depends on nothing heavier than the standard library and podstate, so that
// the plugin binary the container runtime executes for every pod stays small and starts fast.
package agentapi
