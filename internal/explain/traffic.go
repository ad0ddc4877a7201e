package explain

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/reach"
)

// The cluster's DNS as EKS installs it: CoreDNS pods behind this Service.
const (
	dnsNamespace = "kube-system"
	dnsService   = "kube-dns"
	dnsPort      = 53
)

// Probe is one liveness, readiness or startup probe of a container that the kubelet sends to
// a port (httpGet, tcpSocket, grpc); exec probes never leave the pod.
type Probe struct {
	Container string
	Kind      string // liveness, readiness or startup
	Handler   string // httpGet, tcpSocket or grpc
	// Port is the port probed; 0 when PortName names no port of the container.
	Port     int
	PortName string
}

// Traffic is what a branch pod's groups must let through besides its own connections, as AWS
// advises for security groups for pods: DNS to the cluster's resolver, and the kubelet's
// probes. Each path is read as `podsg reach` reads it, from EC2's rules.
type Traffic struct {
	// DNS is one path per CoreDNS pod behind kube-system/kube-dns, from the pod's address.
	DNS []DNSPath
	// DNSErr says why the resolver's pods could not be found.
	DNSErr string
	// Kubelet is from the node's primary address (where the kubelet's probes come from) to
	// the pod; nil when no probe has a port. KubeletErr says why it could not be read.
	Kubelet    *reach.Input
	KubeletErr string
}

// DNSPath is from the pod to one CoreDNS pod.
type DNSPath struct {
	Resolver string // NAMESPACE/NAME of the CoreDNS pod
	Input    reach.Input
	Err      string
}

// probes lists the pod's probes that the kubelet sends to a port of the pod: its containers'
// and its sidecars' (restartable init containers), not those aimed at another host.
func probes(p *corev1.Pod) []Probe {
	var out []Probe
	containers := slices.Clone(p.Spec.Containers)
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, c)
		}
	}
	for _, c := range containers {
		for _, kp := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
			if pr, ok := probeOf(c, kp.kind, kp.probe); ok {
				out = append(out, pr)
			}
		}
	}
	return out
}

func probeOf(c corev1.Container, kind string, p *corev1.Probe) (Probe, bool) {
	if p == nil {
		return Probe{}, false
	}
	out := Probe{Container: c.Name, Kind: kind}
	var port intstr.IntOrString
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil && h.HTTPGet.Host == "":
		out.Handler, port = "httpGet", h.HTTPGet.Port
	case h.TCPSocket != nil && h.TCPSocket.Host == "":
		out.Handler, port = "tcpSocket", h.TCPSocket.Port
	case h.GRPC != nil:
		out.Handler, port = "grpc", intstr.FromInt32(h.GRPC.Port)
	default: // exec, or a probe of another host
		return Probe{}, false
	}
	if port.Type == intstr.Int {
		out.Port = port.IntValue()
		return out, true
	}
	out.PortName = port.StrVal
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			out.Port = int(cp.ContainerPort)
		}
	}
	return out, true
}

// branchAddress is the address of the pod's branch ENI as EC2 has it, "" without one.
func (r *Report) branchAddress() string {
	if r.EC2 == nil || r.EC2.Err != "" {
		return ""
	}
	for _, b := range r.EC2.Branches {
		if b.Found && b.Annotated && b.ENI.PrivateIP != "" {
			return b.ENI.PrivateIP
		}
	}
	return ""
}

// gatherTraffic reads the DNS and probe paths of a pod on a branch ENI; nothing otherwise.
func gatherTraffic(ctx context.Context, kube client.Reader, ec2 EC2, r *Report) *Traffic {
	podIP := r.branchAddress()
	if podIP == "" {
		return nil
	}
	t := &Traffic{}
	t.DNS, t.DNSErr = gatherDNS(ctx, kube, ec2, podIP)
	if r.Node.Found && hasPort(r.Pod.Probes) {
		t.Kubelet, t.KubeletErr = gatherKubelet(ctx, ec2, r.Node.ProviderID, podIP)
	}
	return t
}

func hasPort(ps []Probe) bool {
	for _, p := range ps {
		if p.Port > 0 {
			return true
		}
	}
	return false
}

func gatherDNS(ctx context.Context, kube client.Reader, ec2 EC2, podIP string) ([]DNSPath, string) {
	svc := &corev1.Service{}
	err := kube.Get(ctx, client.ObjectKey{Namespace: dnsNamespace, Name: dnsService}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Sprintf("the cluster has no Service %s/%s", dnsNamespace, dnsService)
	case err != nil:
		return nil, fmt.Sprintf("getting Service %s/%s: %v", dnsNamespace, dnsService, err)
	case len(svc.Spec.Selector) == 0:
		return nil, fmt.Sprintf("Service %s/%s selects no pods", dnsNamespace, dnsService)
	}
	var pods corev1.PodList
	if err := kube.List(ctx, &pods, client.InNamespace(dnsNamespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return nil, fmt.Sprintf("listing the pods of Service %s/%s: %v", dnsNamespace, dnsService, err)
	}
	var out []DNSPath
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.PodIP == "" || policy.Terminal(p) {
			continue
		}
		path := DNSPath{Resolver: p.Namespace + "/" + p.Name}
		in, err := reach.Load(ctx, ec2, nil, podIP, p.Status.PodIP)
		if err != nil {
			path.Err = err.Error()
		}
		path.Input = in
		out = append(out, path)
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("Service %s/%s has no running pod with an address", dnsNamespace, dnsService)
	}
	return out, ""
}

// gatherKubelet reads the path from the node's primary address, the kubelet's, to the pod.
func gatherKubelet(ctx context.Context, ec2 EC2, providerID, podIP string) (*reach.Input, string) {
	id, err := cloud.InstanceID(providerID)
	if err != nil {
		return nil, err.Error()
	}
	inst, err := ec2.DescribeInstance(ctx, id)
	if err != nil {
		return nil, fmt.Sprintf("describing instance %s: %v", id, err)
	}
	in, err := reach.Load(ctx, ec2, nil, inst.PrivateIP, podIP)
	if err != nil {
		return nil, err.Error()
	}
	return &in, ""
}
