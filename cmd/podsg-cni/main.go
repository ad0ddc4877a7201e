// Command podsg-cni is the CNI plugin that container runtimes call. stdout is the CNI protocol,
// so it logs nowhere but stderr.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/podsg/podsg/internal/cni"
	"github.com/podsg/podsg/internal/version"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.SupportedVersions, "podsg-cni "+version.Version)
}
