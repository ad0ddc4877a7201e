package agent

import (
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
)

// TestEnforceConfigNamesEveryPodVethAndNoSubInterface: the unknown-pod drop covers the host
// veths the allocator names for each kind of pod, and never a trunk sub-interface (strict
// pods' traffic leaves through one).
func TestEnforceConfigNamesEveryPodVethAndNoSubInterface(t *testing.T) {
	o := Options{NodeName: "n", Alloc: AllocConfig{VethPrefix: "eni", Mode: podstate.ModeStrict}}
	cfg := enforceConfig(o)
	// nft's wildcard: the name starts with what precedes the *.
	matches := func(patterns []string, name string) bool {
		for _, p := range patterns {
			if strings.HasPrefix(name, strings.TrimSuffix(p, "*")) {
				return true
			}
		}
		return false
	}
	pod := func(name string) bool {
		return matches(cfg.PodInterfaces, name) && !matches(cfg.NotPodInterfaces, name)
	}
	for _, name := range []string{podnet.HostVethName("eni", "ns", "regular"), podnet.HostVethName(podnet.StrictVethPrefix, "ns", "strict")} {
		if !pod(name) {
			t.Errorf("%s is a pod's veth, the config %+v does not cover it", name, cfg)
		}
	}
	for _, name := range []string{podnet.SubInterfaceName(1), podnet.SubInterfaceName(4094), "eth0", "eth1", "lo"} {
		if pod(name) {
			t.Errorf("%s is no pod's veth, the config %+v counts it as one", name, cfg)
		}
	}
}
