package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	cnpclient "sigs.k8s.io/network-policy-api/pkg/client/clientset/versioned"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/policyenforce"
)

// startEnforcer starts the watches network policy enforcement needs (nil without
// --network-policy).
func startEnforcer(ctx context.Context, o Options, kube kubernetes.Interface, cfg *rest.Config, reg prometheus.Registerer) (*policyenforce.Enforcer, error) {
	if !o.NetworkPolicy {
		return nil, nil
	}
	cnp, err := cnpclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("ClusterNetworkPolicy client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for Calico's policies: %w", err)
	}
	w, note, err := policyenforce.StartWatch(ctx, kube, cnp, dyn)
	if err != nil {
		return nil, err
	}
	if note != "" {
		logr.FromContextOrDiscard(ctx).Info(note)
	}
	return policyenforce.New(enforceConfig(o), w, policyenforce.NFT{}, reg), nil
}

// enforceConfig names the node's pod interfaces: the host veths of regular and standard-mode
// branch pods (--veth-prefix) and of strict-mode branch pods, but not the trunk's
// sub-interfaces, whose names also start with "vlan".
func enforceConfig(o Options) policyenforce.Config {
	return policyenforce.Config{NodeName: o.NodeName, LogDenied: o.LogDenied,
		PodInterfaces:    []string{o.Alloc.VethPrefix + "*", podnet.StrictVethPrefix + "*"},
		NotPodInterfaces: []string{strings.TrimSuffix(podnet.SubInterfaceName(0), "0") + "*"},
	}
}

// firstEnforcement tells the enforcer the node's pods from their records, then installs the
// first ruleset: it replaces the one a previous agent left in one transaction, so a restart
// opens no window, and it knows every running pod, so none is cut off.
func firstEnforcement(ctx context.Context, e *policyenforce.Enforcer, store *podstate.Store, pods *podWatch) error {
	if e == nil {
		return nil
	}
	recs, _ := store.List() // syncPool logged the unreadable ones
	for _, r := range recs {
		if r.HostVeth == "" {
			continue
		}
		lp := policyenforce.LocalPod{Namespace: r.PodNamespace, Name: r.PodName, HostVeth: r.HostVeth, IP: r.IP}
		if pod, err := pods.lister.Pods(r.PodNamespace).Get(r.PodName); err == nil {
			lp.Pod = pod
		}
		e.SetLocal(lp)
	}
	if err := e.Sync(ctx); err != nil {
		return fmt.Errorf("installing the first network policy ruleset: %w", err)
	}
	return nil
}
