package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/policyenforce"
)

// AllocConfig shapes the records the allocator writes.
type AllocConfig struct {
	EnablePodENI bool
	// Mode is podstate.ModeStrict or podstate.ModeStandard for branch pods.
	Mode string
	// VethPrefix names host veths of regular pods, and of branch pods in standard mode (AWS's
	// VPC CNI uses "eni"); strict-mode branch pods use "vlan", as AWS does.
	VethPrefix string
	// RouteTableBase + VLAN id is a branch pod's route table.
	RouteTableBase int
	// AnnotationWait bounds how long an ADD waits for podsg-controller's annotation, so that
	// the usual few hundred milliseconds of allocation do not fail the sandbox.
	AnnotationWait time.Duration
}

// retryable marks conditions that resolve by themselves; the plugin reports them as "try
// again later" and kubelet retries.
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// allocator decides and records each pod's network.
type allocator struct {
	cfg   AllocConfig
	store *podstate.Store
	pods  Pods
	pool  *Pool
	trunk *trunkFinder
	fill  func() // asks for more IPs, without waiting
	// enforce is the node's network policy enforcement (nil: none): an ADD returns only once
	// the pod's rules are installed, and a DEL forgets the pod.
	enforce Enforcement

	mu sync.Mutex // one allocation at a time: records and the pool change together
}

// Enforcement is what the allocator needs of network policy enforcement
// (policyenforce.Enforcer).
type Enforcement interface {
	Admit(ctx context.Context, p policyenforce.LocalPod) error
	Forget(namespace, name string)
}

// admitWait bounds how long an ADD waits for the pod's network policy rules; past it the ADD
// is retried (the pod's veth stays dropped meanwhile, see internal/policyenforce).
const admitWait = 10 * time.Second

// Add allocates the pod's network and, with enforcement, waits until the node's ruleset knows
// the pod, so that the pod's first packet is judged by its policies.
func (a *allocator) Add(ctx context.Context, req agentapi.AddRequest) (*podstate.Record, error) {
	rec, pod, err := a.add(ctx, req)
	if err != nil || a.enforce == nil {
		return rec, err
	}
	actx, cancel := context.WithTimeout(ctx, admitWait)
	defer cancel()
	if err := a.enforce.Admit(actx, policyenforce.LocalPod{Namespace: rec.PodNamespace, Name: rec.PodName,
		HostVeth: rec.HostVeth, IP: rec.IP, Pod: pod}); err != nil {
		return nil, retryable{err}
	}
	return rec, nil
}

func (a *allocator) add(ctx context.Context, req agentapi.AddRequest) (*podstate.Record, *corev1.Pod, error) {
	rec, err := a.store.Get(req.ContainerID, req.IfName)
	if err == nil {
		// A retried ADD gets what the first one allocated (the enforcer finds its pod in the
		// watch).
		return rec, nil, nil
	}
	// An unusable record must not block the container forever: this ADD writes a new one (a
	// leased IP stays the container's, Allocate returns it again).
	if err := a.setAsideIfCorrupt(ctx, err, req.ContainerID, req.IfName); err != nil {
		return nil, nil, err
	}
	pod, err := a.pods.Get(ctx, req.PodNamespace, req.PodName)
	if err != nil {
		return nil, nil, fmt.Errorf("getting pod %s/%s: %w", req.PodNamespace, req.PodName, err)
	}
	if req.PodUID != "" && string(pod.UID) != req.PodUID {
		return nil, nil, retryable{fmt.Errorf("pod %s/%s has UID %s, the runtime asked for %s: waiting for the API server to catch up", req.PodNamespace, req.PodName, pod.UID, req.PodUID)}
	}
	rec = &podstate.Record{Version: podstate.Version, ContainerID: req.ContainerID, IfName: req.IfName, Netns: req.Netns,
		PodNamespace: req.PodNamespace, PodName: req.PodName, PodUID: string(pod.UID)}
	if policy.WantsBranchENI(pod) {
		err = a.branch(ctx, pod, rec)
	} else {
		err = a.regular(rec)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := a.store.Put(rec); err != nil {
		if rec.Kind == podstate.KindRegular {
			a.pool.Release(rec.IP)
		}
		return nil, nil, err
	}
	return rec, pod, nil
}

func (a *allocator) regular(rec *podstate.Record) error {
	a.mu.Lock()
	lease, err := a.pool.Allocate(rec.Key())
	a.mu.Unlock()
	a.fill() // keep the pool warm behind this pod
	if errors.Is(err, ErrNoFreeIP) || errors.Is(err, errNodeFull) {
		return retryable{err}
	}
	if err != nil {
		return err
	}
	rec.Kind, rec.IP, rec.ENIID, rec.RouteTable = podstate.KindRegular, lease.IP, lease.ENIID, lease.Table
	rec.HostVeth = podnet.HostVethName(a.cfg.VethPrefix, rec.PodNamespace, rec.PodName)
	return nil
}

func (a *allocator) branch(ctx context.Context, pod *corev1.Pod, rec *podstate.Record) error {
	if !a.cfg.EnablePodENI {
		return fmt.Errorf("pod %s/%s requests %s but this node's agent runs without --enable-pod-eni", pod.Namespace, pod.Name, v1beta1.ResourcePodENI)
	}
	// One bound for both waits: the annotation comes after the trunk anyway, and the agent
	// learns of the trunk a poll interval after the controller attached it.
	deadline := time.NewTimer(a.cfg.AnnotationWait)
	defer deadline.Stop()
	value, err := a.waitForAnnotation(ctx, pod, deadline.C)
	if err != nil {
		return err
	}
	enis, err := v1beta1.ParsePodENIs(value)
	if err != nil {
		return err
	}
	if len(enis) == 0 {
		return fmt.Errorf("pod %s/%s: the %s annotation lists no ENI", pod.Namespace, pod.Name, v1beta1.AnnotationPodENI)
	}
	e := enis[0] // AWS's VPC CNI also wires only the first
	if err := e.Validate(); err != nil {
		return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	t, err := a.waitForTrunk(ctx, deadline.C)
	if err != nil {
		return err
	}
	subnet := netip.MustParsePrefix(e.SubnetCIDR).Masked() // Validate parsed it
	prefix := a.cfg.VethPrefix
	if a.cfg.Mode == podstate.ModeStrict {
		prefix = podnet.StrictVethPrefix
	}
	rec.Kind, rec.IP, rec.Gateway = podstate.KindBranch, netip.MustParseAddr(e.PrivateIP), subnet.Addr().Next()
	rec.ENIID, rec.VLAN, rec.BranchMAC, rec.SubnetCIDR = e.ENIID, e.VLANID, e.IfAddress, subnet.String()
	rec.HostVeth = podnet.HostVethName(prefix, rec.PodNamespace, rec.PodName)
	rec.SubInterface, rec.TrunkLink, rec.TrunkGateway = podnet.SubInterfaceName(e.VLANID), t.Link, t.Gateway
	rec.RouteTable, rec.Mode = a.cfg.RouteTableBase+e.VLANID, a.cfg.Mode
	return nil
}

// waitForAnnotation returns the pod's pod-eni annotation, waiting up to AnnotationWait for
// podsg-controller to write it.
func (a *allocator) waitForAnnotation(ctx context.Context, pod *corev1.Pod, deadline <-chan time.Time) (string, error) {
	for {
		changed := a.pods.Changed() // before reading, so an update in between is not missed
		if v := pod.Annotations[v1beta1.AnnotationPodENI]; v != "" {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline:
			return "", retryable{fmt.Errorf("pod %s/%s has no %s annotation yet: podsg-controller has not allocated its branch ENI", pod.Namespace, pod.Name, v1beta1.AnnotationPodENI)}
		case <-changed:
		}
		fresh, err := a.pods.Get(ctx, pod.Namespace, pod.Name)
		if err != nil {
			return "", fmt.Errorf("getting pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		pod = fresh
	}
}

// waitForTrunk returns the node's trunk once the agent has found it.
func (a *allocator) waitForTrunk(ctx context.Context, deadline <-chan time.Time) (*Trunk, error) {
	select {
	case <-a.trunk.Ready():
		return a.trunk.Get(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-deadline:
		return nil, retryable{errors.New("this node's trunk interface is not attached yet")}
	}
}

// Del forgets a container's network: its IP goes back to the pool and its record is deleted.
func (a *allocator) Del(ctx context.Context, req agentapi.DelRequest) error {
	rec, err := a.store.Get(req.ContainerID, req.IfName)
	var corrupt *podstate.CorruptError
	switch {
	case errors.Is(err, podstate.ErrNotFound):
		return nil
	case errors.As(err, &corrupt):
		return a.forgetUnusable(ctx, corrupt, req)
	case err != nil:
		return err
	}
	if rec.Kind == podstate.KindRegular {
		a.mu.Lock()
		a.pool.Release(rec.IP)
		a.mu.Unlock()
	}
	if err := a.store.Delete(req.ContainerID, req.IfName); err != nil {
		return err
	}
	if a.enforce != nil {
		a.enforce.Forget(rec.PodNamespace, rec.PodName)
	}
	return nil
}

// forgetUnusable is Del for a container whose record cannot be read: the plugin has torn its
// network down by the names it derives, so the record is set aside and the IP the pool leased
// to the container, known by the record's key, is released.
func (a *allocator) forgetUnusable(ctx context.Context, corrupt *podstate.CorruptError, req agentapi.DelRequest) error {
	if err := a.setAsideIfCorrupt(ctx, corrupt, req.ContainerID, req.IfName); err != nil {
		return err
	}
	a.mu.Lock()
	ip, ok := a.pool.ReleaseKey((&podstate.Record{ContainerID: req.ContainerID, IfName: req.IfName}).Key())
	a.mu.Unlock()
	if ok {
		logr.FromContextOrDiscard(ctx).Info("released the IP of a container whose record was unusable", "container", req.ContainerID, "ip", ip)
	}
	return nil
}

// setAsideIfCorrupt moves an unusable record (err from store.Get) out of the container's way,
// logging where it went. ErrNotFound is no error; other errors are returned.
func (a *allocator) setAsideIfCorrupt(ctx context.Context, err error, containerID, ifName string) error {
	var corrupt *podstate.CorruptError
	if !errors.As(err, &corrupt) {
		if errors.Is(err, podstate.ErrNotFound) {
			return nil
		}
		return err
	}
	aside, serr := a.store.SetAside(containerID, ifName, time.Now())
	if errors.Is(serr, podstate.ErrNotFound) {
		return nil // the plugin set it aside first
	}
	if serr != nil {
		return fmt.Errorf("%w; setting it aside: %w", err, serr)
	}
	logr.FromContextOrDiscard(ctx).Error(err, "set an unusable pod network record aside", "container", containerID, "ifName", ifName, "setAside", aside)
	return nil
}
