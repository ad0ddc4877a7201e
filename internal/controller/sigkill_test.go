package controller_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSIGKILLMidAllocation is TestCrashSafety with real crashes: the podsg-controller binary,
// on the local VPC API, is killed with SIGKILL as soon as the VPC has answered the k-th
// mutating request, before the process reads the answer, and a fresh process is started, for
// k = 1, 2, 3, … until a process finishes every allocation without the VPC reaching k. Only
// calls with a new effect count: a restarted process may replay, idempotently, the call whose
// answer its predecessor lost, and that is no new step. So each process gets exactly one step
// further than the last, and the kills walk through every step of the node's trunk setup and
// of all the pods' allocations (about 30s here, cheap enough for `make test` uncapped). The
// end state must be the one TestCrashSafety asserts.
//
// Then reuse: the pods go, their branches cool down and are parked; new pods take them, half
// with the same groups (no EC2 call) and half with other groups (one call that changes the
// groups), and the kills walk through those calls too, each fresh process rebuilding the
// parked and reused branches from EC2 and the pods. More pods then take what is parked. At
// the end every pod has a branch of its own carrying exactly its groups, and every other
// branch is parked on its node's trunk. In between, warm-up: a policy's warm target is made
// while the kills walk through its creates and associations, and the node ends with exactly
// that many warm branches and nothing unassociated.
func TestSIGKILLMidAllocation(t *testing.T) {
	const pods = 4
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-controller")
	w := startWith(t, options{backend: backendVPC, noManager: true})
	prepareForProcess(t, w)
	gate, endpoint := newKillGate(t, w.vpc.URL)
	// The user the admin kubeconfig authenticates as, given as --controller-username: the
	// override of the identity the process would otherwise learn at start.
	args := append(processArgs(t, w, endpoint), "--controller-username="+kubeconfigUser(t, w.env.Kubeconfig))
	// start runs a fresh process, to be killed once the VPC has answered k mutations.
	start := func(k int) *testenv.Process {
		t.Helper()
		p, err := testenv.StartProcess(t, bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		gate.arm(p, k)
		return p
	}

	// The first process serves the webhook while the pods are admitted, before any node
	// exists: nothing is allocated, and nothing mutated in the VPC, until the node comes.
	p := start(1)
	ns := controllertest.Namespace(t, w.c, "sigkill")
	other := w.vpc.NewGroup(t, w.vpcID, "backend-c")
	otherPolicy, otherSA := controllertest.SeedPolicy(ns), controllertest.SeedServiceAccount(ns)
	otherPolicy.Name, otherPolicy.Spec.SecurityGroups.Groups = "other-policy", []string{other}
	otherPolicy.Spec.ServiceAccountSelector.MatchLabels = map[string]string{"role": "other"}
	otherSA.Name, otherSA.Labels = "other", map[string]string{"role": "other"}
	controllertest.Create(t, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns), otherPolicy, otherSA)
	waitWebhookCacheFor(t, w, ns, "rds-db-access")
	waitWebhookCacheFor(t, w, ns, "other")
	for i := range pods {
		controllertest.Create(t, w.c, controllertest.Pod(ns, fmt.Sprint("backend-", i), "rds-db-access"))
	}
	node, _ := w.addNode(t, "ip-10-0-0-40")

	kills, p := killUntilAllocated(t, gate, start, p, 1, w, ns, pods)
	for _, want := range []string{"CreateNetworkInterface", "AttachNetworkInterface", "AssociateTrunkInterface"} {
		if !slices.Contains(kills, want) {
			t.Errorf("never killed right after %s", want)
		}
	}
	// The last process, never killed, is still running: check the end state with it.
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		if err := p.ExitErr(); err != nil {
			return fmt.Errorf("%w\n%s", err, p.LogTail())
		}
		return noOrphans(ctx, w, ns)
	})

	// Reuse: the pods go, and once their branches cooled down (2s) they are parked: all of the
	// node's capacity is back, the ENIs stay.
	for i := range pods {
		deletePod(t, w.c, ns, fmt.Sprint("backend-", i))
	}
	w.waitCapacity(t, node.Name, 9)
	// The running process dies at its first new mutation too.
	first := gate.answered() + 1
	gate.arm(p, first)
	var reusers []*corev1.Pod
	for i := range pods {
		sa := "rds-db-access"
		if i%2 == 1 {
			sa = "other"
		}
		reusers = append(reusers, controllertest.Pod(ns, fmt.Sprint("reuser-", i), sa))
	}
	created := createRetrying(t, w.c, reusers)
	kills, p = killUntilAllocated(t, gate, start, p, first, w, ns, pods)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kills, "ModifyNetworkInterfaceAttribute") {
		t.Errorf("never killed right after ModifyNetworkInterfaceAttribute: %v", kills)
	}
	settled := func(pods int) {
		t.Helper()
		testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
			if err := p.ExitErr(); err != nil {
				return fmt.Errorf("%w\n%s", err, p.LogTail())
			}
			if err := allAllocated(ctx, w, ns, pods); err != nil {
				return err
			}
			return noOrphansReusing(ctx, w, ns)
		})
	}
	settled(pods)

	// Warm-up, while the trunk has room (the late pods below fill it): a policy asks for 2 warm
	// branches of its own groups on every node, and the kills walk through their creates and
	// associations. A fresh process adopts what a kill left unassociated from its tags and
	// associates it, and counts the associated ones, cooling down afresh, toward the target:
	// each process gets one step further, and the node ends with exactly the target.
	warmGroups := []string{w.vpc.NewGroup(t, w.vpcID, "warm")}
	two := int32(2)
	warmPolicy := controllertest.SeedPolicy(ns)
	warmPolicy.Name, warmPolicy.Spec.SecurityGroups.Groups, warmPolicy.Spec.WarmBranchesPerNode = "warm-policy", warmGroups, &two
	warmPolicy.Spec.ServiceAccountSelector.MatchLabels = map[string]string{"role": "warm"}
	first = gate.answered() + 1
	gate.arm(p, first)
	controllertest.Create(t, w.c, warmPolicy)
	warmed := func(ctx context.Context) error { return warmOn(ctx, w, warmGroups, 2) }
	kills, p = killUntil(t, gate, start, p, first, warmed)
	for _, want := range []string{"CreateNetworkInterface", "AssociateTrunkInterface"} {
		if !slices.Contains(kills, want) {
			t.Errorf("never killed right after %s while warming: %v", want, kills)
		}
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		if err := p.ExitErr(); err != nil {
			return fmt.Errorf("%w (killed after %s)\n%s", err, gate.victim(), p.LogTail())
		}
		if err := warmed(ctx); err != nil {
			return err
		}
		if err := allAllocated(ctx, w, ns, pods); err != nil {
			return err
		}
		return noOrphansReusing(ctx, w, ns)
	})

	// Once nothing cools down any more, more pods come, to the last process, left running:
	// they take what it parked, never a branch a running pod was given before a kill.
	gate.arm(nil, 0)
	w.waitCapacity(t, node.Name, 9)
	for i := range pods {
		controllertest.Create(t, w.c, controllertest.Pod(ns, fmt.Sprint("late-", i), "rds-db-access"))
	}
	settled(2 * pods)
}

// createRetrying creates pods in the background, each retried until the apiserver takes it:
// their admission needs the webhook of a process the gate may just have killed, and the next
// process comes only from killUntil. It sends the first failure, if any, then closes.
func createRetrying(t *testing.T, c client.Client, pods []*corev1.Pod) <-chan error {
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for _, p := range pods {
			var last error
			err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
				last = c.Create(ctx, p.DeepCopy())
				return last == nil || apierrors.IsAlreadyExists(last), nil
			})
			if err != nil {
				errc <- fmt.Errorf("creating pod %s: %w (last: %w)", p.Name, err, last)
				return
			}
		}
	}()
	return errc
}

// warmOn reports whether exactly n idle branches carrying groups are on the node's trunk.
func warmOn(ctx context.Context, w *world, groups []string, n int) error {
	branches, err := w.enis(ctx, cloud.InterfaceTypeBranch)
	if err != nil {
		return err
	}
	assocs, err := w.associations(ctx)
	if err != nil {
		return err
	}
	associated := map[string]bool{}
	for _, a := range assocs {
		associated[a.BranchID] = true
	}
	warm := 0
	for _, e := range branches {
		if associated[e.ID] && inventory.SameGroups(e.SecurityGroups, groups) {
			warm++
		}
	}
	if warm != n {
		return fmt.Errorf("%d associated branches carry %v, want %d", warm, groups, n)
	}
	return nil
}

// killUntilAllocated is killUntil every pod of ns is allocated.
func killUntilAllocated(t *testing.T, gate *killGate, start func(k int) *testenv.Process, p *testenv.Process,
	k int, w *world, ns string, pods int) ([]string, *testenv.Process) {
	t.Helper()
	return killUntil(t, gate, start, p, k, func(ctx context.Context) error { return allAllocated(ctx, w, ns, pods) })
}

// killUntil waits for the running process p, armed to die once the VPC has answered k
// mutations, then starts a fresh process for k+1, k+2, … until one gets done to return nil
// unkilled, and returns the actions whose answers the kills lost and that last process.
func killUntil(t *testing.T, gate *killGate, start func(k int) *testenv.Process, p *testenv.Process,
	k int, done func(context.Context) error) ([]string, *testenv.Process) {
	t.Helper()
	var kills []string // the action whose response each kill lost
	for first := k; ; k++ {
		if k > first {
			p = start(k)
		}
		killed, err := waitKillOr(t.Context(), p, gate, done)
		if err != nil {
			t.Fatalf("process %d: %v\n%s", k, err, p.LogTail())
		}
		if !killed {
			t.Logf("process %d got done with %d new mutating requests", k, gate.made())
			break
		}
		kills = append(kills, gate.victim())
		// Each step is a handful of mutations (trunk: create, attach; branch: create,
		// associate, or change groups), so this is far beyond what converging takes.
		if k-first > 40 {
			t.Fatalf("still killing after %d processes (%v): the work does not converge", k-first, kills)
		}
	}
	t.Logf("killed %d processes, right after: %v", len(kills), kills)
	return kills, p
}

// waitKillOr waits until the gate killed the process (killed is true) or done returns nil
// (killed is false).
func waitKillOr(ctx context.Context, p *testenv.Process, g *killGate, done func(context.Context) error) (killed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("neither killed nor done allocating: %w", ctx.Err())
		case <-g.killedCh():
			return true, nil
		case <-poll.C:
			if err := p.ExitErr(); err != nil {
				// The gate kills, then closes its channel: an exit seen in between is its kill.
				if g.didKill() {
					return true, nil
				}
				return false, err
			}
			// The VPC applies a mutation before the gate sees its answer: done may see the
			// effect of the very call whose answer the gate is about to withhold with a kill.
			// Only with no mutation in flight does done mean that the process got there.
			if g.mutating() == 0 && done(ctx) == nil && g.mutating() == 0 {
				return g.didKill(), nil
			}
		}
	}
}

// killGate sits between podsg-controller and the local VPC. It forwards every request, counts
// the mutating ones the VPC answered with a new effect (one no earlier call had: an
// idempotent replay after a restart is no new step), and once the VPC has answered k of them it kills the
// armed process with SIGKILL before passing the k-th answer on: the VPC has applied the call,
// the process never learnt its outcome, as when a process dies with a request in flight. The
// VPC's podsg_vpc_requests_total counts the same requests, but only after answering them, so
// polling it would let the process run on, often through the next step, before the kill.
type killGate struct {
	upstream string
	client   *http.Client

	mu      sync.Mutex
	proc    *testenv.Process
	k       int // kill proc once the VPC has answered k mutations
	total   int // mutations the VPC answered with a new effect
	effects map[string]bool
	n       int    // of them, made by proc
	action  string // whose answer the kill lost
	killed  chan struct{}
	// inflight counts the mutating requests forwarded and not yet counted.
	inflight int
}

func newKillGate(t testing.TB, upstream string) (*killGate, string) {
	t.Helper()
	g := &killGate{upstream: upstream, client: &http.Client{Timeout: time.Minute}, killed: make(chan struct{}), effects: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// arm makes p the process the gate kills once the VPC has answered k mutating requests; a nil
// p kills none.
func (g *killGate) arm(p *testenv.Process, k int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proc, g.k, g.n, g.action, g.killed = p, k, 0, "", make(chan struct{})
}

// didKill reports whether the gate has killed the armed process. count holds the mutex from
// the kill to closing the channel, so taking it here waits out that window.
func (g *killGate) didKill() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.killed:
		return true
	default:
		return false
	}
}

func (g *killGate) killedCh() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.killed
}

func (g *killGate) begin() { g.mu.Lock(); g.inflight++; g.mu.Unlock() }
func (g *killGate) end()   { g.mu.Lock(); g.inflight--; g.mu.Unlock() }

// mutating is how many mutating requests are between the process and their count.
func (g *killGate) mutating() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight
}

func (g *killGate) made() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// answered is how many mutations with a new effect the VPC has answered so far.
func (g *killGate) answered() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

func (g *killGate) victim() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.action
}

func (g *killGate) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if form, _ := url.ParseQuery(string(body)); isMutation(form.Get("Action")) {
		g.begin()
		defer g.end()
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, g.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	req.Header = r.Header.Clone()
	resp, err := g.client.Do(req)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	form, _ := url.ParseQuery(string(body))
	// The effect of a call: what was asked and what the VPC answered, but for the request id.
	effect := form.Encode() + " → " + requestID.ReplaceAllString(string(out), "")
	if action := form.Get("Action"); isMutation(action) && g.count(action, effect) {
		panic(http.ErrAbortHandler) // the process is dead: nobody reads this answer
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// count records one mutation the VPC answered with a new effect and kills the armed process
// once the VPC has answered k; it reports whether the process is dead.
func (g *killGate) count(action, effect string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.effects[effect] {
		return false // an idempotent replay, after a restart, of a call whose answer was lost
	}
	g.effects[effect] = true
	g.total++ // also the answers of a process killed meanwhile: the VPC applied them
	select {
	case <-g.killed:
		return true
	default:
	}
	if g.proc == nil {
		return false
	}
	g.n++
	if g.total < g.k {
		return false
	}
	g.proc.Kill()
	g.action = action
	close(g.killed)
	return true
}

var requestID = regexp.MustCompile(`<requestId>[^<]*</requestId>`)

// isMutation: the action changes the VPC.
func isMutation(action string) bool {
	return action != "" && !strings.HasPrefix(action, "Describe") && !strings.HasPrefix(action, "Get")
}

// kubeconfigUser is the user name the apiserver sees for a kubeconfig's client certificate:
// its common name.
func kubeconfigUser(t testing.TB, path string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		t.Fatalf("%s: no current context", path)
	}
	auth, ok := cfg.AuthInfos[kctx.AuthInfo]
	if !ok {
		t.Fatalf("%s: no user %q", path, kctx.AuthInfo)
	}
	block, _ := pem.Decode(auth.ClientCertificateData)
	if block == nil {
		t.Fatalf("%s: user %q has no client certificate", path, kctx.AuthInfo)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Subject.CommonName
}
