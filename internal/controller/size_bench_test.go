package controller_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
	"github.com/podsg/podsg/internal/webhook"
)

// BenchmarkScaleControllerSize runs the podsg-controller binary over a cluster of
// PODSG_SCALE_SIZE_NODES simulated trunk nodes (default 1,000; issue 15's size is 5,000) with
// PODSG_SCALE_SIZE_PODS pods (20,000; the 100,000), a tenth of them with security
// groups: a real apiserver (no scheduler, no kubelet), the local VPC with EC2's throttling
// profile holding the trunks and the SG pods' branches (seeded through its state layer), the
// pods bound, Running and, for the SG ones, annotated with their branches, as a running
// controller left them. One op is one process's life:
//   - it starts, syncs its caches of every pod and node and adopts every trunk;
//   - PODSG_SCALE_CREATE_RATE (200) pods a second are created for PODSG_SCALE_CREATE_SECONDS
//     (30) through its webhooks, every tenth selected by a SecurityGroupPolicy (unbound, so
//     that the webhook, not EC2's mutation budget, is what the phase loads), and each must come
//     back as the webhook leaves it: the policy's groups and the pod-eni request on the
//     selected pods, neither on the others;
//   - once its work queues are empty, the EC2 describe requests the local VPC answers are
//     counted in each minute of PODSG_SCALE_STEADY_SECONDS (120), with --sweep-interval=1m
//     (the default is 5m) so that every minute holds a sweep: the busiest minute is reported,
//     the requests by action logged.
//
// It reports the process's peak resident set (/proc: VmHWM, the whole life); the mutating
// webhook's latency as the process measures it (podsg_webhook_duration_seconds, buckets of
// 0.25 to 10 ms: the share of calls within 5 ms and the p99 interpolated within the buckets
// as histogram_quantile does) and the share within 5 ms as the apiserver measures it, TLS and
// its own queueing included (apiserver_admission_webhook_admission_duration_seconds, whose
// first bucket is 5 ms); the creations' latency at the client, the creation rate reached,
// and describe requests per minute at steady state, and when the resident set peaked and what
// the Go heap was then. The process runs with --memory-limit=PODSG_SCALE_MEMORY_LIMIT (921Mi,
// what a container limited to 1 GiB gets by default; "none" for the runtime's default).
// PODSG_SCALE_PROFILE=DIR writes the process's CPU, block and mutex profiles of the creation
// phase (--pprof-contention), an execution trace of 5 s from a third of it in, and its heap at
// the peak and at the end there (--pprof-addr).
func BenchmarkScaleControllerSize(b *testing.B) {
	nodes := scaleSize(b, "PODSG_SCALE_SIZE_NODES", 1000)
	pods := scaleSize(b, "PODSG_SCALE_SIZE_PODS", 20000)
	rate := scaleSize(b, "PODSG_SCALE_CREATE_RATE", 200)
	createFor := time.Duration(scaleSize(b, "PODSG_SCALE_CREATE_SECONDS", 30)) * time.Second
	steady := time.Duration(scaleSize(b, "PODSG_SCALE_STEADY_SECONDS", 120)) * time.Second
	perNode := pods / nodes
	if perNode < 10 || pods%nodes != 0 {
		b.Fatalf("%d pods on %d nodes: want a multiple of the nodes, at least 10 a node (a tenth with security groups)", pods, nodes)
	}
	sgPerNode := perNode / 10
	ctx := b.Context()
	bin := testenv.Build(b, "github.com/podsg/podsg/cmd/podsg-controller")
	env := testenv.Start(b, testenv.Options{}) // the process registers its own webhooks
	profile, err := server.LoadProfile("aws")
	if err != nil {
		b.Fatal(err)
	}
	w := &world{env: env, c: fastClient(b, env.Config), opts: options{backend: backendVPC, noManager: true}}
	w.vpc = vpctest.Start(b, vpctest.Options{Profile: profile})
	pumpClock(b, w.vpc.Clock)
	nodeName := func(i int) string { return fmt.Sprintf("sim-%05d", i) }
	const ns = "scale"
	seedStart := time.Now()
	fleet, err := vpctest.SeedFleet(ctx, w.vpc.Store, vpctest.FleetSpec{
		Nodes: nodes, BranchesPerNode: sgPerNode, InstanceType: "m5.4xlarge",
		TrunkTags: func(i int, _ string) state.Tags {
			return state.Tags{cloud.TagCluster: cluster, cloud.TagNode: nodeName(i)}
		},
		BranchTags: func(i int, trunk string, vlan int) state.Tags {
			return state.Tags{cloud.TagCluster: cluster, cloud.TagTrunkENI: trunk, cloud.TagNode: nodeName(i),
				cloud.TagNamespace: ns, cloud.TagPodName: fmt.Sprintf("sg-%05d-%02d", i, vlan)}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	w.vpcID = fleet[0].VPC
	controllertest.Namespace(b, w.c, ns)
	// No controller-manager makes it, and the pods' token volume names it.
	controllertest.Create(b, w.c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	groups := fleet[0].Branches[0].Groups
	const branchLimit = 54 // EC2's for m5.4xlarge
	var g errgroup.Group
	g.SetLimit(16)
	for _, n := range fleet {
		g.Go(func() error {
			node := nodeName(n.Index)
			if _, err := controllertest.SimulatedNode(ctx, w.c, node, w.vpc.Store.Region()+"a", n.Instance, true, branchLimit); err != nil {
				return err
			}
			for i := range perNode - sgPerNode {
				if err := createRunning(ctx, w.c, fleetPod(ns, fmt.Sprintf("p-%05d-%02d", n.Index, i), node, n.Index), n.Index, i); err != nil {
					return err
				}
			}
			for _, br := range n.Branches {
				p, err := controllertest.BranchPod(ns, fmt.Sprintf("sg-%05d-%02d", n.Index, br.VLAN), node, groups, &v1beta1.PodENI{
					ENIID: br.ENI, IfAddress: br.MAC, PrivateIP: br.IP, VLANID: br.VLAN, SubnetCIDR: n.SubnetCIDR,
					AssociationID: br.Association})
				if err != nil {
					return err
				}
				dressPod(p, n.Index)
				if err := createRunning(ctx, w.c, p, n.Index, br.VLAN); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d nodes, %d pods (%d with branches) in %s (load average %s)", nodes, nodes*perNode,
		nodes*sgPerNode, time.Since(seedStart).Round(time.Second), loadAverage())
	policy := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sg"},
		Spec: v1beta1.SecurityGroupPolicySpec{
			PodSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"sg": "yes"}},
			SecurityGroups: v1beta1.GroupIDs{Groups: groups}}}
	controllertest.Create(b, w.c, policy)
	prepareForProcess(b, w)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", testenv.FreePort(b))
	// processArgs' flags, then the ones this benchmark changes (the last of a flag wins): the
	// production cool-down, metrics to read the work queues from, a sweep a minute.
	// The memory limit is the one a container with a 1 GiB limit gets by default (90 %, as
	// --memory-limit=auto reads it from the cgroup; this process has none to read).
	memLimit := cmp.Or(os.Getenv("PODSG_SCALE_MEMORY_LIMIT"), "921Mi")
	args := append(processArgs(b, w, w.vpc.URL), "--branch-cooldown=60s",
		"--metrics-addr="+strings.TrimSuffix(strings.TrimPrefix(metricsURL, "http://"), "/metrics"),
		"--sweep-interval=1m", "--memory-limit="+memLimit)
	profileDir, pprofURL := os.Getenv("PODSG_SCALE_PROFILE"), ""
	if profileDir != "" {
		pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", testenv.FreePort(b))
		args = append(args, "--pprof-addr="+strings.TrimSuffix(strings.TrimPrefix(pprofURL, "http://"), "/debug/pprof/"),
			"--pprof-contention")
	}
	// writeProfile writes the process's profile name (a /debug/pprof/ path) to profileDir.
	writeProfile := func(name, file string) error {
		if profileDir == "" {
			return nil
		}
		data, err := httpGetter(pprofURL + name)(b.Context())
		if err == nil {
			err = os.WriteFile(filepath.Join(profileDir, file), data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("saving the controller's %s profile: %w", name, err)
		}
		return nil
	}
	saveProfile := func(name, file string) {
		if err := writeProfile(name, file); err != nil {
			b.Error(err)
		}
	}
	apiserver := kubernetes.NewForConfigOrDie(env.Config)
	apiserverMetrics := func(ctx context.Context) ([]byte, error) {
		return apiserver.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	}

	var peakRSS, webhookWithin, webhookP99, apiWithin, createRate, perMinute float64
	refused := 0
	var createLatencies []time.Duration
	op := 0
	for b.Loop() {
		start := time.Now()
		p, err := testenv.StartProcess(b, bin, args...)
		if err != nil {
			b.Fatal(err)
		}
		peak := watchPeak(b, p.Pid(), start, metricsURL, func() error {
			return writeProfile("heap", fmt.Sprintf("size-%d-peak.heap.pprof", op))
		})
		waitMutating(b, w.c, ns, fmt.Sprint("probe-", op), p)
		b.Logf("op %d: the webhook mutates pods %.1f s after the start, --memory-limit=%s (load average %s)", op,
			time.Since(start).Seconds(), memLimit, loadAverage())

		apiBefore, ownBefore := scrape(b, apiserverMetrics), scrape(b, httpGetter(metricsURL))
		cpuBefore := mustProcStatus(b, p.Pid()).cpu
		apiPid := apiserverPid(b, env.Config.Host)
		schedBefore, apiSchedBefore := threadSched(p.Pid()), threadSched(apiPid)
		// The creation phase's CPU, block and mutex profiles, and an execution trace of its
		// middle: what a webhook call waits on between the request and the answer.
		var profiles sync.WaitGroup
		secs := int(createFor.Seconds())
		for name, file := range map[string]string{"profile": "cpu", "block": "block", "mutex": "mutex"} {
			profiles.Go(func() {
				saveProfile(fmt.Sprintf("%s?seconds=%d", name, secs), fmt.Sprintf("size-%d-create.%s.pprof", op, file))
			})
		}
		if traceFor := min(secs/3, 5); profileDir != "" && traceFor > 0 {
			profiles.Go(func() {
				select {
				case <-b.Context().Done():
					return
				case <-time.After(createFor / 3):
				}
				saveProfile(fmt.Sprintf("trace?seconds=%d", traceFor), fmt.Sprintf("size-%d-create.trace", op))
			})
		}
		lat, reached, failed := createAtRate(b, w.c, ns, op, rate, createFor)
		refused += failed
		profiles.Wait()
		cpu := mustProcStatus(b, p.Pid()).cpu - cpuBefore
		sched, apiSched := threadSched(p.Pid()).since(schedBefore), threadSched(apiPid).since(apiSchedBefore)
		b.Logf("op %d: while creating, the kernel ran podsg-controller's threads %.1f s and kept them waiting for a CPU %.1f s; kube-apiserver's %.1f s and %.1f s",
			op, sched.ran.Seconds(), sched.waited.Seconds(), apiSched.ran.Seconds(), apiSched.waited.Seconds())
		apiAfter, ownAfter := scrape(b, apiserverMetrics), scrape(b, httpGetter(metricsURL))
		createLatencies = append(createLatencies, lat...)
		createRate += reached
		b.Logf("op %d: %d pods created, %d refused, started at %.0f/s; the controller's CPU meanwhile %.1f s, %.2f ms a pod (load average %s)",
			op, len(lat), failed, reached, cpu.Seconds(), cpu.Seconds()*1000/float64(len(lat)+failed), loadAverage())
		var own, api []string
		for _, path := range []string{webhook.MutatePath, webhook.ValidatePath, webhook.IdentityPath} {
			within, p50, p99, calls := latency(ownBefore, ownAfter, "podsg_webhook_duration_seconds", byLabels(map[string]string{"path": path}))
			own = append(own, fmt.Sprintf("%s %.0f calls, %.1f%% within 5 ms, p50 %.2f ms, p99 %.1f ms", path, calls, 100*within, p50*1000, p99*1000))
			if path == webhook.MutatePath {
				webhookWithin += within
				webhookP99 += p99
			}
		}
		for _, name := range []string{"mpod.podsg.io", "vpod.podsg.io", "mpodidentity.podsg.io"} {
			within, p50, p99, calls := latency(apiBefore, apiAfter, "apiserver_admission_webhook_admission_duration_seconds",
				byLabels(map[string]string{"name": name, "operation": "CREATE"}))
			api = append(api, fmt.Sprintf("%s %.0f calls, %.1f%% within 5 ms, p50 %.0f ms, p99 %.0f ms", name, calls, 100*within, p50*1000, p99*1000))
			if name == "mpod.podsg.io" {
				apiWithin += within
			}
		}
		b.Logf("op %d: the webhooks by their own histogram: %s; as the apiserver waited on them (buckets 5, 25, 100, 500 ms…): %s",
			op, strings.Join(own, "; "), strings.Join(api, "; "))
		handshakes := sumMetric(ownAfter, "podsg_webhook_tls_handshakes_total") - sumMetric(ownBefore, "podsg_webhook_tls_handshakes_total")
		b.Logf("op %d: the webhook server made %.0f TLS handshakes while creating (new connections from the apiserver)", op, handshakes)

		testenv.Eventually(b, 10*time.Minute, func(ctx context.Context) error {
			depth := sumMetric(scrape(b, httpGetter(metricsURL)), "workqueue_depth")
			if depth > 0 {
				return fmt.Errorf("the controller's work queues hold %.0f items", depth)
			}
			return nil
		})
		b.Logf("op %d: work queues empty %.1f s after the start", op, time.Since(start).Seconds())
		byAction := vpcRequests(b, w)
		minutes := describesOver(b, w, steady)
		b.Logf("op %d: describe requests in each minute at steady state: %v, by action %v (load average %s)", op, minutes,
			describesSince(b, w, byAction), loadAverage())
		perMinute += slices.Max(minutes)

		saveProfile("heap", fmt.Sprintf("size-%d.heap.pprof", op))
		b.Logf("op %d: %s", op, peak())
		usage := mustProcStatus(b, p.Pid())
		peakRSS += float64(usage.peakRSS) / (1 << 20)
		b.Logf("op %d: peak RSS %.0f MiB, RSS now %.0f MiB, CPU %.1f s", op, float64(usage.peakRSS)/(1<<20),
			float64(usage.rss)/(1<<20), usage.cpu.Seconds())
		if err := p.Stop(30 * time.Second); err != nil {
			b.Fatal(err)
		}
		op++
	}
	n := float64(op)
	b.ReportMetric(peakRSS/n, "MiB-peak-rss")
	b.ReportMetric(100*webhookWithin/n, "pct-webhook-within-5ms")
	b.ReportMetric(1000*webhookP99/n, "webhook-p99-ms")
	b.ReportMetric(100*apiWithin/n, "pct-apiserver-webhook-within-5ms")
	b.ReportMetric(createRate/n, "creates/s")
	b.ReportMetric(float64(refused)/n, "refused")
	b.ReportMetric(perMinute/n, "describes/min")
	testenv.ReportLatencies(b, "create", createLatencies)
}

// watchPeak follows the resident set of process pid, started at start, until the returned
// function is called, which stops it and says when the set peaked and what the Go runtime
// said of its heap then: whether the peak is live data or garbage the collector has not
// reclaimed yet (the heap allowed to grow to twice what the last collection left, GOGC=100).
// The process's metrics are read at each new high of at least 32 MiB; heapProfile, called
// then too, saves a heap profile when the benchmark profiles (its in-use figures are those of
// the last completed collection). Either may fail while the process is starting, before it
// serves them: only a failure at the last high is reported.
func watchPeak(b *testing.B, pid int, start time.Time, metricsURL string, heapProfile func() error) (stop func() string) {
	const step = 32 << 20
	var peak, recorded int64
	var peakAt time.Duration
	var memstats string
	var profileErr error
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			s, err := readProcStatus(pid)
			if err != nil || s.rss <= peak {
				continue
			}
			peak, peakAt = s.rss, time.Since(start)
			if peak < recorded+step {
				continue
			}
			recorded = peak
			profileErr = heapProfile()
			stats, err := goMemStats(b.Context(), metricsURL)
			if err != nil {
				stats = fmt.Sprintf("nothing (%v)", err)
			}
			memstats = stats
		}
	}()
	return func() string {
		close(done)
		<-stopped
		out := fmt.Sprintf("resident set highest seen %.0f MiB, %.1f s after the start; at the last high of %.0f MiB the Go runtime said %s",
			float64(peak)/(1<<20), peakAt.Seconds(), float64(recorded)/(1<<20), memstats)
		if profileErr != nil {
			out += fmt.Sprintf(" (no heap profile then: %v)", profileErr)
		}
		return out
	}
}

// goMemStats is the process's Go heap as its metrics report it: in use by objects (live or
// not yet swept), the size at which the next collection starts, and what the runtime holds
// from the OS (heap spans, less what it has returned).
func goMemStats(ctx context.Context, metricsURL string) (string, error) {
	data, err := httpGetter(metricsURL)(ctx)
	if err != nil {
		return "", err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	mib := func(name string) float64 { return sumMetric(mfs, name) / (1 << 20) }
	var gcs uint64
	for _, m := range mfs["go_gc_duration_seconds"].GetMetric() {
		gcs += m.GetSummary().GetSampleCount()
	}
	return fmt.Sprintf("heap alloc %.0f MiB, next GC at %.0f MiB, heap held %.0f MiB, %d GCs", mib("go_memstats_heap_alloc_bytes"),
		mib("go_memstats_next_gc_bytes"), mib("go_memstats_heap_sys_bytes")-mib("go_memstats_heap_released_bytes"),
		gcs), nil
}

// fastClient is a client of cfg without client-go's default 5 requests a second: seeding
// tens of thousands of pods, and creating 200 a second, needs more.
func fastClient(b *testing.B, cfg *rest.Config) client.Client {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0 // negative: no client-side rate limiter
	c, err := client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// fleetPod is a pod of a Deployment as it looks once admitted, scheduled and running: what
// the controller's cache holds for each of the fleet's pods (its managedFields stripped).
func fleetPod(ns, name, node string, nodeIndex int) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: node, AutomountServiceAccountToken: new(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
	dressPod(p, nodeIndex)
	return p
}

// dressPod gives p what a Deployment's pod carries: labels, an owner, resources, a port,
// environment, the ServiceAccount token volume admission adds and the default tolerations.
func dressPod(p *corev1.Pod, nodeIndex int) {
	app := fmt.Sprint("svc-", nodeIndex%200)
	p.Labels = map[string]string{"app": app, "pod-template-hash": "5d8f7c9b6"}
	p.Spec.ServiceAccountName = "default"
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-5d8f7c9b6",
		UID: types.UID(fmt.Sprintf("0f0e0d0c-0b0a-4908-8706-%012d", nodeIndex%200)), Controller: new(true), BlockOwnerDeletion: new(true)}}
	c := &p.Spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
	c.Env = []corev1.EnvVar{{Name: "APP", Value: app}, {Name: "LOG_LEVEL", Value: "info"},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	p.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}}}
	p.Spec.Tolerations = []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))}}
}

// createRunning creates p and reports it Running, as its kubelet would: the status is what
// most of a running pod's bytes are.
func createRunning(ctx context.Context, c client.Client, p *corev1.Pod, nodeIndex, i int) error {
	if err := c.Create(ctx, p); err != nil {
		return fmt.Errorf("creating pod %s: %w", p.Name, err)
	}
	started := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	ip := fmt.Sprintf("10.%d.%d.%d", 100+nodeIndex/250, nodeIndex%250, 10+i)
	hostIP := fmt.Sprintf("10.99.%d.%d", nodeIndex/250, nodeIndex%250)
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started}
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: hostIP, HostIPs: []corev1.HostIP{{IP: hostIP}},
		PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, StartTime: &started, QOSClass: corev1.PodQOSBurstable,
		Conditions: []corev1.PodCondition{cond(corev1.PodReadyToStartContainers), cond(corev1.PodInitialized),
			cond(corev1.PodReady), cond(corev1.ContainersReady), cond(corev1.PodScheduled)},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Started: new(true),
			Image: "registry.k8s.io/pause:3.10", ImageID: "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
			ContainerID: fmt.Sprintf("containerd://%064x", nodeIndex*1000+i),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}}
	if err := c.Status().Update(ctx, p); err != nil {
		return fmt.Errorf("reporting pod %s running: %w", p.Name, err)
	}
	return nil
}

// waitMutating waits until the process's mutating webhook gives a pod the policy selects its
// groups: the process is then serving, its policy cache synced.
func waitMutating(b *testing.B, c client.Client, ns, name string, p *testenv.Process) {
	testenv.Eventually(b, 10*time.Minute, func(ctx context.Context) error {
		if p.Exited() {
			return testenv.Abort(fmt.Errorf("podsg-controller exited: %w\n%s", p.Err(), p.LogTail()))
		}
		probe := loadPod(ns, name, true)
		if err := c.Create(ctx, probe); err != nil {
			return err
		}
		defer func() { _ = c.Delete(ctx, probe, client.GracePeriodSeconds(0)) }()
		if probe.Annotations[v1beta1.AnnotationSecurityGroups] == "" {
			return errors.New("the webhook has not mutated a pod the policy selects yet")
		}
		return nil
	})
}

// loadPod is a pod of the creation phase: unbound (no scheduler runs), selected by the
// policy when sg.
func loadPod(ns, name string, sg bool) *corev1.Pod {
	p := controllertest.Pod(ns, name, "")
	p.Labels = map[string]string{"app": "load"}
	if sg {
		p.Labels["sg"] = "yes"
	}
	return p
}

// createAtRate creates rate pods a second for d, each tenth selected by the policy, every
// creation started on its tick whether or not the previous ones have returned (up to 1,000 at
// once). A creation the apiserver refuses (a webhook that did not answer within its 5 s
// timeout: they fail closed) is a result, counted and its first error logged; a pod the
// webhook did not leave as it should fails the benchmark. It returns the latencies of the
// creations that succeeded, the rate at which they were started, and the refused ones.
func createAtRate(b *testing.B, c client.Client, ns string, op, rate int, d time.Duration) ([]time.Duration, float64, int) {
	total := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, total)
	var refused, wrong atomic.Int64
	var firstRefusal, firstWrong error
	var onceRefused, onceWrong sync.Once
	sem := make(chan struct{}, 1000)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start := time.Now()
	for i := range total {
		<-tick.C
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sg := i%10 == 0
			p := loadPod(ns, fmt.Sprintf("load-%d-%05d", op, i), sg)
			t0 := time.Now()
			if err := c.Create(b.Context(), p); err != nil {
				refused.Add(1)
				onceRefused.Do(func() { firstRefusal = err })
				return
			}
			lat[i] = time.Since(t0)
			got := p.Annotations[v1beta1.AnnotationSecurityGroups] != ""
			_, asks := p.Spec.Containers[0].Resources.Limits[v1beta1.ResourcePodENI]
			if got != sg || asks != sg {
				wrong.Add(1)
				onceWrong.Do(func() {
					firstWrong = fmt.Errorf("pod %s (selected: %t) came back with groups %t, pod-eni request %t", p.Name, sg, got, asks)
				})
			}
		})
	}
	startedIn := time.Since(start)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		b.Fatalf("%d of %d pods were not mutated as their policy says, the first: %v", n, total, firstWrong)
	}
	if n := refused.Load(); n > 0 {
		b.Logf("%d of %d creations refused, the first: %v", n, total, firstRefusal)
	}
	ok := slices.DeleteFunc(lat, func(d time.Duration) bool { return d == 0 })
	return ok, float64(total) / startedIn.Seconds(), int(refused.Load())
}

// scrape reads a Prometheus text exposition from get.
func scrape(b *testing.B, get func(context.Context) ([]byte, error)) map[string]*dto.MetricFamily {
	data, err := get(b.Context())
	if err != nil {
		b.Fatalf("reading metrics: %v", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		b.Fatalf("parsing metrics: %v", err)
	}
	return mfs
}

// httpGetter GETs url.
func httpGetter(url string) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		return io.ReadAll(resp.Body)
	}
}

// sumMetric adds up every series of a gauge or counter family (0 if absent).
func sumMetric(mfs map[string]*dto.MetricFamily, name string) float64 {
	sum := 0.0
	for _, m := range mfs[name].GetMetric() {
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return sum
}

// latency is the calls of a histogram between two scrapes, of the series match picks: the share
// of them within 5 ms, the p50 and p99 interpolated linearly within the buckets (as PromQL's
// histogram_quantile does) and how many there were.
func latency(before, after map[string]*dto.MetricFamily, family string, match func(*dto.Metric) bool) (within, p50, p99, calls float64) {
	buckets := func(mfs map[string]*dto.MetricFamily) map[float64]float64 {
		out := map[float64]float64{}
		for _, m := range mfs[family].GetMetric() {
			if !match(m) {
				continue
			}
			inf := false
			for _, bk := range m.GetHistogram().GetBucket() {
				out[bk.GetUpperBound()] += float64(bk.GetCumulativeCount())
				inf = inf || math.IsInf(bk.GetUpperBound(), 1)
			}
			if !inf { // the text parser keeps le="+Inf" as a bucket; a registry's Gather does not
				out[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return out
	}
	was, is := buckets(before), buckets(after)
	var bounds []float64
	for le := range is {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	cum := make([]float64, len(bounds))
	for i, le := range bounds {
		cum[i] = is[le] - was[le]
	}
	if len(cum) == 0 || cum[len(cum)-1] == 0 {
		return 0, 0, 0, 0
	}
	calls = cum[len(cum)-1]
	i, found := slices.BinarySearch(bounds, 0.005)
	if !found {
		panic(fmt.Sprintf("%s has no 5 ms bucket: %v", family, bounds))
	}
	return cum[i] / calls, histogramQuantile(0.5, bounds, cum), histogramQuantile(0.99, bounds, cum), calls
}

// byLabels matches the series whose labels have these values.
func byLabels(want map[string]string) func(*dto.Metric) bool {
	return func(m *dto.Metric) bool {
		for k, v := range want {
			if labelOf(m, k) != v {
				return false
			}
		}
		return true
	}
}

// histogramQuantile is PromQL's histogram_quantile over cumulative bucket counts: linear
// within the bucket the quantile falls in, the lower bound of the first bucket 0, and the
// highest finite bound when it falls in the +Inf bucket.
func histogramQuantile(q float64, bounds, cum []float64) float64 {
	rank := q * cum[len(cum)-1]
	for i, c := range cum {
		if c < rank {
			continue
		}
		if math.IsInf(bounds[i], 1) {
			return bounds[max(i-1, 0)]
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bounds[i-1], cum[i-1]
		}
		if c == below {
			return bounds[i]
		}
		return lo + (bounds[i]-lo)*(rank-below)/(c-below)
	}
	return bounds[len(bounds)-1]
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// describeCount is every Describe* request the local VPC has answered.
func describeCount(b *testing.B, w *world) float64 {
	n := 0.0
	for action, codes := range vpcRequests(b, w) {
		if strings.HasPrefix(action, "Describe") {
			for _, v := range codes {
				n += v
			}
		}
	}
	return n
}

// describesSince is the describe requests by action since the count was.
func describesSince(b *testing.B, w *world, was map[string]map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for action, codes := range vpcRequests(b, w) {
		if !strings.HasPrefix(action, "Describe") {
			continue
		}
		for code, v := range codes {
			if d := v - was[action][code]; d > 0 {
				out[action] += d
			}
		}
	}
	return out
}

// describesOver counts the describe requests the local VPC answers in each whole minute of
// window (at least one): the window is the measurement, nothing waits on it.
func describesOver(b *testing.B, w *world, window time.Duration) []float64 {
	var out []float64
	for range max(int(window/time.Minute), 1) {
		before := describeCount(b, w)
		select {
		case <-b.Context().Done():
			b.Fatal(b.Context().Err())
		case <-time.After(time.Minute):
		}
		out = append(out, describeCount(b, w)-before)
	}
	return out
}

// procStatus is what /proc says of a process: its CPU (user + system), resident set and peak.
type procStatus struct {
	cpu          time.Duration
	rss, peakRSS int64 // bytes
}

func mustProcStatus(b *testing.B, pid int) procStatus {
	s, err := readProcStatus(pid)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// readProcStatus reads utime and stime from /proc/PID/stat, VmRSS and VmHWM from
// /proc/PID/status.
func readProcStatus(pid int) (procStatus, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("reading the process's CPU time: %w", err)
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procStatus{}, fmt.Errorf("parsing /proc/%d/stat %q", pid, stat)
	}
	const clockTicks = 100 // USER_HZ, the unit of /proc/PID/stat's times on every Linux ABI
	s := procStatus{cpu: time.Duration(utime+stime) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("reading the process's memory: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		for prefix, into := range map[string]*int64{"VmHWM:": &s.peakRSS, "VmRSS:": &s.rss} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					return procStatus{}, fmt.Errorf("parsing %s %q: %w", prefix, v, err)
				}
				*into = kb * 1024
			}
		}
	}
	return s, nil
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, for the log: every number
// of this benchmark depends on what else the machine runs.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ") + fmt.Sprintf(" on %d CPUs", runtime.NumCPU())
}

// schedTimes is what the kernel's scheduler says of a process's threads (schedstat): the time
// they ran on a CPU and the time they were runnable, waiting for one. A goroutine's time
// "running" in an execution trace includes its thread's wait, which only these show.
type schedTimes struct{ ran, waited time.Duration }

func (s schedTimes) since(was schedTimes) schedTimes {
	return schedTimes{ran: s.ran - was.ran, waited: s.waited - was.waited}
}

// threadSched sums /proc/PID/task/*/schedstat (zero for pid 0, or a process gone): threads
// that exit in between take their times with them, a process's threads mostly live as long.
func threadSched(pid int) schedTimes {
	var s schedTimes
	if pid == 0 {
		return s
	}
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var ran, waited int64
		if _, err := fmt.Sscan(string(data), &ran, &waited); err == nil {
			s.ran += time.Duration(ran)
			s.waited += time.Duration(waited)
		}
	}
	return s
}

// apiserverPid finds the kube-apiserver serving host (https://127.0.0.1:PORT) among the
// machine's processes by its --secure-port, 0 if none: others may run their own.
func apiserverPid(b *testing.B, host string) int {
	_, port, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/"), ":")
	if !ok {
		b.Logf("no port in the apiserver's address %q: its scheduling is not reported", host)
		return 0
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(data), "\x00")
		if filepath.Base(args[0]) == "kube-apiserver" && slices.Contains(args, "--secure-port="+port) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			return pid
		}
	}
	b.Logf("no kube-apiserver with --secure-port=%s: its scheduling is not reported", port)
	return 0
}
