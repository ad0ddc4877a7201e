// Package cni is the podsg CNI plugin's logic: it parses the network configuration and asks the
// node agent, over its unix socket, to set up or tear down a pod's network. The binary's main is
// only the CNI skeleton.
package cni
