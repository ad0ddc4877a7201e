package agent

import (
	"context"
	"net/netip"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podsg/podsg/internal/policy"
)

// A record that cannot be read hides which IP its container holds, and its pod may still be
// running: syncPool then holds for each of the node's pods the IPs it reports that no readable
// record holds, under the pod's claimKey, so that the pool does not give them to a new pod.
// Such a claim ends when its pod is gone or terminal (releaseClaim, on the pod watch's
// events): Sync runs only at start, so waiting for the next one would keep the IP for the
// agent's lifetime. The DEL of the container whose record was unusable cannot end it (the
// plugin's DEL names no pod): it releases only what the pool leased under the record's key.

// claimKey is the pool key of the IPs held for a pod that has no readable record. Record keys
// (container ID "_" interface) never contain a slash, so the two never meet in Allocate.
func claimKey(uid types.UID) string { return "pod/" + string(uid) }

// holdsPodIP reports whether pod's sandbox may still hold the IPs it reports: terminal pods'
// sandboxes are torn down, and host network pods report the node's address.
func holdsPodIP(pod *corev1.Pod) bool { return !pod.Spec.HostNetwork && !policy.Terminal(pod) }

// unrecordedPodIPs returns, by claimKey, the IPs that pods holding one report and that no key
// in recorded holds.
func unrecordedPodIPs(pods []*corev1.Pod, recorded map[netip.Addr]string) map[netip.Addr]string {
	claims := map[netip.Addr]string{}
	for _, pod := range pods {
		if !holdsPodIP(pod) {
			continue
		}
		for _, s := range pod.Status.PodIPs {
			ip, err := netip.ParseAddr(s.IP)
			if _, ok := recorded[ip]; err == nil && !ok {
				claims[ip] = claimKey(pod.UID)
			}
		}
	}
	return claims
}

// releaseClaim returns the IPs held for pod to the pool once the pod no longer holds them.
func releaseClaim(ctx context.Context, pool *Pool, pod *corev1.Pod) {
	for {
		ip, ok := pool.ReleaseKey(claimKey(pod.UID))
		if !ok {
			return
		}
		logr.FromContextOrDiscard(ctx).Info("released an IP held for a pod whose record was unusable", "pod", pod.Namespace+"/"+pod.Name, "ip", ip)
	}
}
