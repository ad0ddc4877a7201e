package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
)

// benchCNIPods is how many pods of each kind one iteration sets up and tears down.
const benchCNIPods = 50

// BenchmarkCNIAddDel measures the runtime's view of ADD and DEL: libcni executing the built
// podsg-cni from a node namespace, for benchCNIPods branch pods (strict, vxlan sub-interfaces
// on a trunk link) and benchCNIPods regular pods, one at a time. The agent is a stub serving
// internal/agentapi on a unix socket with prepared records (written to the shared state dir,
// as the real agent does): what is measured is the plugin's process, its agent round trip,
// podnet and the record, not the agent's decisions. It reports the median and 99th
// percentile per pod, in milliseconds (of 50 samples per iteration, p99 is the slowest).
func BenchmarkCNIAddDel(b *testing.B) {
	testenv.RequireRoot(b)
	plugin := testenv.Build(b, "github.com/podsg/podsg/cmd/podsg-cni")
	for _, kind := range []string{podstate.KindBranch, podstate.KindRegular} {
		b.Run(kind, func(b *testing.B) {
			env := newBenchCNI(b, filepath.Dir(plugin))
			var adds, dels []time.Duration
			for range b.N {
				a, d := env.addDelPods(b, kind)
				adds, dels = append(adds, a...), append(dels, d...)
			}
			testenv.ReportLatencies(b, "add", adds)
			testenv.ReportLatencies(b, "del", dels)
		})
	}
}

type benchCNI struct {
	node  ns.NetNS
	cni   *libcni.CNIConfig
	list  *libcni.NetworkConfigList
	stub  *stubAgent
	store *podstate.Store
}

func newBenchCNI(b *testing.B, binDir string) *benchCNI {
	b.Helper()
	dir := b.TempDir()
	store, err := podstate.NewStore(filepath.Join(dir, "pods"))
	if err != nil {
		b.Fatal(err)
	}
	socket := filepath.Join(dir, "agent.sock")
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "podsg", "plugins": [{"type": "podsg-cni", "agentSocket": %q,
		"stateDir": %q, "mtu": 1400, "subInterfaceDriver": "vxlan", "vxlanPort": 4789}]}`, socket, filepath.Join(dir, "pods"))
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		b.Fatal(err)
	}
	env := &benchCNI{node: benchNS(b), cni: libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(dir, "cache"), nil),
		list: list, stub: serveStubAgent(b, socket, store), store: store}
	// The trunk: a link with an address for the vxlan sub-interfaces to originate from.
	benchRun(b, env.node, "ip", "link", "add", "trunk0", "type", "veth", "peer", "name", "trunk0-peer")
	benchRun(b, env.node, "ip", "addr", "add", "10.99.0.10/24", "dev", "trunk0")
	benchRun(b, env.node, "ip", "link", "set", "trunk0", "up")
	return env
}

func (e *benchCNI) addDelPods(b *testing.B, kind string) (adds, dels []time.Duration) {
	b.Helper()
	type pod struct {
		rt  *libcni.RuntimeConf
		ns  ns.NetNS
		rec *podstate.Record
	}
	pods := make([]pod, benchCNIPods)
	for i := range pods {
		rec := benchRecord(kind, i)
		netns := benchNS(b)
		pods[i] = pod{ns: netns, rec: rec, rt: &libcni.RuntimeConf{ContainerID: rec.ContainerID, NetNS: netns.Path(), IfName: "eth0",
			Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", rec.PodNamespace}, {"K8S_POD_NAME", rec.PodName}}}}
		e.stub.prepare(rec)
	}
	ctx := context.WithoutCancel(b.Context())
	inNode := func(fn func() error) error { return e.node.Do(func(ns.NetNS) error { return fn() }) }
	for _, p := range pods {
		start := time.Now()
		if err := inNode(func() error { _, err := e.cni.AddNetworkList(ctx, e.list, p.rt); return err }); err != nil {
			b.Fatalf("CNI ADD %s: %v", p.rec.PodName, err)
		}
		adds = append(adds, time.Since(start))
	}
	for _, p := range pods {
		start := time.Now()
		if err := inNode(func() error { return e.cni.DelNetworkList(ctx, e.list, p.rt) }); err != nil {
			b.Fatalf("CNI DEL %s: %v", p.rec.PodName, err)
		}
		dels = append(dels, time.Since(start))
	}
	// Everything is gone: records, and the node's links.
	if recs, errs := e.store.List(); len(recs) != 0 || len(errs) != 0 {
		b.Fatalf("after DEL: %d record(s) left, errors %v", len(recs), errs)
	}
	err := inNode(func() error {
		for _, p := range pods {
			for _, name := range []string{p.rec.HostVeth, p.rec.SubInterface} {
				if _, err := netlink.LinkByName(name); name != "" && err == nil {
					return fmt.Errorf("link %s left behind after DEL", name)
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return adds, dels
}

func benchRecord(kind string, i int) *podstate.Record {
	name := fmt.Sprintf("%s-%d", kind, i)
	rec := &podstate.Record{Version: podstate.Version, IfName: "eth0", PodNamespace: "default", PodName: name, ContainerID: "c-" + name,
		Kind: kind, IP: netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + i)}), HostVeth: podnet.HostVethName("eni", "default", name)}
	if kind == podstate.KindBranch {
		vlan := 10 + i
		rec.IP, rec.Gateway, rec.HostVeth = netip.AddrFrom4([4]byte{10, 30, 0, byte(10 + i)}), netip.MustParseAddr("10.30.0.1"), podnet.HostVethName("vlan", "default", name)
		rec.VLAN, rec.BranchMAC, rec.SubnetCIDR, rec.SubInterface = vlan, fmt.Sprintf("02:3b:a8:a7:9d:%02x", i), "10.30.0.0/24", podnet.SubInterfaceName(vlan)
		rec.TrunkLink, rec.TrunkGateway, rec.RouteTable, rec.Mode = "trunk0", netip.MustParseAddr("10.99.0.1"), 100+vlan, podstate.ModeStrict
	}
	return rec
}

// stubAgent answers the plugin as the node agent does, from records prepared by pod name.
type stubAgent struct {
	mu    sync.Mutex
	recs  map[string]*podstate.Record
	store *podstate.Store
}

func (s *stubAgent) prepare(rec *podstate.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[rec.PodNamespace+"/"+rec.PodName] = rec
}

func serveStubAgent(b *testing.B, socket string, store *podstate.Store) *stubAgent {
	b.Helper()
	s := &stubAgent{recs: map[string]*podstate.Record{}, store: store}
	l, err := net.Listen("unix", socket)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathAdd, func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.AddRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			stubAnswer(w, http.StatusBadRequest, &agentapi.Error{Message: err.Error()})
			return
		}
		s.mu.Lock()
		prepared, ok := s.recs[req.PodNamespace+"/"+req.PodName]
		s.mu.Unlock()
		if !ok {
			stubAnswer(w, http.StatusInternalServerError, &agentapi.Error{Message: "no record prepared for " + req.PodName})
			return
		}
		rec := *prepared
		rec.ContainerID, rec.IfName, rec.Netns = req.ContainerID, req.IfName, req.Netns
		if err := s.store.Put(&rec); err != nil {
			stubAnswer(w, http.StatusInternalServerError, &agentapi.Error{Message: err.Error()})
			return
		}
		stubAnswer(w, http.StatusOK, &rec)
	})
	mux.HandleFunc("POST "+agentapi.PathDel, func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.DelRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			stubAnswer(w, http.StatusBadRequest, &agentapi.Error{Message: err.Error()})
			return
		}
		if err := s.store.Delete(req.ContainerID, req.IfName); err != nil {
			stubAnswer(w, http.StatusInternalServerError, &agentapi.Error{Message: err.Error()})
			return
		}
		stubAnswer(w, http.StatusOK, struct{}{})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	b.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			b.Errorf("stub agent: %v", err)
		}
	})
	return s
}

func stubAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func benchNS(b *testing.B) ns.NetNS {
	b.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = n.Close()
		_ = testutils.UnmountNS(n)
	})
	return n
}

func benchRun(b *testing.B, n ns.NetNS, args ...string) string {
	b.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--"}, args...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
