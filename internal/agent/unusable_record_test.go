package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
)

// TestDelWithAnUnusableRecord: kubelet must always be able to remove a sandbox. A regular and
// a branch pod are set up through libcni by the built plugin and agent, then their records are
// overwritten with "{garbage". CHECK says the record is unusable. DEL still succeeds, twice:
// with the agent up and the pod's namespace passed (the regular pod), the agent sets the record
// aside and releases its IP; with the agent down and no namespace passed (the branch pod), the
// plugin finds the host veth, the pod's table, rules and sub-interface by the pod's names and
// sets the record aside itself. Nothing of either pod stays on the node, and each record is
// kept, byte for byte, next to where it was. STATUS follows the agent: ready, then error 50.
func TestDelWithAnUnusableRecord(t *testing.T) {
	testenv.RequireRoot(t)
	w := newWorld(t, false)
	node := w.instance(t, types.InstanceTypeM5Large)
	w.startAgent(t, node, true)
	branchPod, regularPod := w.pod(t, "postgres-test", true), w.pod(t, "web", false)
	w.attachTrunk(t, node)
	w.annotate(t, branchPod, w.branchENI(t, node))
	branchNS, regularNS := newNetNS(t), newNetNS(t)
	w.cniAdd(t, node, branchNS, branchPod)
	w.cniAddRetry(t, node, regularNS, regularPod)
	if err := w.cniStatus(t, node); err != nil {
		t.Fatalf("STATUS with the agent serving: %v", err)
	}

	recs := map[string]podstate.Record{}
	for _, r := range w.records(t) {
		recs[r.PodName] = r
		if err := os.WriteFile(filepath.Join(w.podState, r.Key()+".json"), []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	regular, branch := recs["web"], recs["postgres-test"]
	if regular.Kind != podstate.KindRegular || branch.Kind != podstate.KindBranch {
		t.Fatalf("records before the damage: %+v", recs)
	}
	err := w.inNode(t, node, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
		return c.CheckNetworkList(context.WithoutCancel(t.Context()), l, w.runtimeConf(regularNS, regularPod))
	})
	if err == nil || !strings.Contains(err.Error(), "record is unusable") || !strings.Contains(err.Error(), regular.Key()+".json") {
		t.Errorf("CHECK with the record damaged = %v, want it to name the unusable record", err)
	}

	for range 2 {
		w.cniDel(t, node, regularNS, regularPod)
	}
	w.expectNoTrace(t, node, regular.IP, regular.HostVeth)
	w.expectSetAside(t, regular)
	if _, m := getInNetns(t, node, "http://127.0.0.1:8482/metrics"); !strings.Contains(m, `podsg_agent_pod_ips{state="used"} 0`) {
		t.Errorf("the agent still holds the regular pod's IP:\n%s", m)
	}

	w.agent.Kill()
	err = w.cniStatus(t, node)
	var ce *cnitypes.Error
	if !errors.As(err, &ce) || ce.Code != 50 {
		t.Errorf("STATUS with the agent down = %v, want CNI error 50", err)
	}
	noNetns := w.runtimeConf(branchNS, branchPod)
	noNetns.NetNS = ""
	for range 2 {
		err := w.inNode(t, node, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
			return c.DelNetworkList(context.WithoutCancel(t.Context()), l, noNetns)
		})
		if err != nil {
			t.Fatalf("CNI DEL %s without a netns: %v", branchPod.Name, err)
		}
	}
	w.expectNoTrace(t, node, branch.IP, branch.HostVeth)
	w.expectSetAside(t, branch)
	w.expectNodeClean(t, node)
	err = ns.WithNetNSPath("/run/netns/"+node, func(ns.NetNS) error {
		if _, err := netlink.LinkByName(branch.SubInterface); err == nil {
			t.Errorf("sub-interface %s left behind", branch.SubInterface)
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: branch.RouteTable}, netlink.RT_FILTER_TABLE)
		if err == nil && len(routes) > 0 {
			t.Errorf("table %d still routes: %v", branch.RouteTable, routes)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// cniStatus runs CNI 1.1's STATUS on the installed network. The agent writes a 1.0.0 list
// (which runtimes do not ask for STATUS); the runtime here speaks 1.1.0.
func (w *world) cniStatus(t *testing.T, nodeNS string) error {
	t.Helper()
	return w.inNode(t, nodeNS, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
		l.CNIVersion = "1.1.0"
		return c.GetStatusNetworkList(context.WithoutCancel(t.Context()), l)
	})
}

// expectSetAside checks that r's record path is free and that one set-aside file next to it
// holds what was written over the record.
func (w *world) expectSetAside(t *testing.T, r podstate.Record) {
	t.Helper()
	path := filepath.Join(w.podState, r.Key()+".json")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record %s still there after DEL (%v)", path, err)
	}
	aside, err := filepath.Glob(path + ".corrupt-*")
	if err != nil {
		t.Fatal(err)
	}
	if len(aside) != 1 {
		t.Fatalf("set-aside files for %s: %v, want one", r.Key(), aside)
	}
	if data, err := os.ReadFile(aside[0]); err != nil || string(data) != "{garbage" {
		t.Errorf("%s holds %q (%v), want the damaged record", aside[0], data, err)
	}
}
