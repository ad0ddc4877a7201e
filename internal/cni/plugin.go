package cni

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// SupportedVersions are the CNI spec versions the plugin speaks.
var SupportedVersions = version.PluginSupports("1.0.0", "1.1.0")

// Funcs returns the plugin's CNI commands for skel.PluginMainFuncs.
//
// Until the node agent lands (issue "Node agent and CNI plugin"), every command answers a CNI
// error rather than pretending to succeed, so a runtime never starts a pod without a network.
func Funcs() skel.CNIFuncs {
	notYet := func(*skel.CmdArgs) error {
		return types.NewError(types.ErrInternal, "podsg-cni is not implemented yet", "the node agent and CNI plugin land with their own issue")
	}
	return skel.CNIFuncs{Add: notYet, Del: notYet, Check: notYet}
}
