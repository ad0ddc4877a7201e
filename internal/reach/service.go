package reach

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/podsg/podsg/internal/cloud"
)

// ServicePrefix starts a destination that names a Service: svc/NAMESPACE/NAME.
const ServicePrefix = "svc/"

// Services is what reach needs of Kubernetes for a svc/NAMESPACE/NAME destination.
type Services interface {
	GetService(ctx context.Context, namespace, name string) (*corev1.Service, error)
	// EndpointSlices are the slices of the Service (label kubernetes.io/service-name).
	EndpointSlices(ctx context.Context, namespace, service string) ([]discoveryv1.EndpointSlice, error)
}

// Backend is one ready endpoint of a Service, and the port a connection to the Service's
// port reaches there after kube-proxy's translation.
type Backend struct {
	// Spec names the backend as reach's endpoints do: pod/NAMESPACE/NAME for a pod, else its address.
	Spec string
	IP   netip.Addr
	Port int
}

// ErrNoBackends is a Service with no ready endpoint on the port: kube-proxy rejects the
// connection, so no network layer is asked.
var ErrNoBackends = errors.New("no ready backend")

// ParseService reads svc/NAMESPACE/NAME.
func ParseService(spec string) (namespace, name string, err error) {
	ns, name, ok := strings.Cut(strings.TrimPrefix(spec, ServicePrefix), "/")
	if !strings.HasPrefix(spec, ServicePrefix) || !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q: want svc/NAMESPACE/NAME", spec)
	}
	return ns, name, nil
}

// LoadBackends reads the Service spec names and its endpoint slices, and returns the Service
// port the flow uses and the ready backends it reaches (Backends).
func LoadBackends(ctx context.Context, svcs Services, spec string, f Flow) (corev1.ServicePort, []Backend, error) {
	ns, name, err := ParseService(spec)
	if err != nil {
		return corev1.ServicePort{}, nil, err
	}
	if svcs == nil {
		return corev1.ServicePort{}, nil, fmt.Errorf("%s: naming a Service needs a Kubernetes cluster (--kubeconfig)", spec)
	}
	svc, err := svcs.GetService(ctx, ns, name)
	if err != nil {
		return corev1.ServicePort{}, nil, fmt.Errorf("reading %s: %w", spec, err)
	}
	eps, err := svcs.EndpointSlices(ctx, ns, name)
	if err != nil {
		return corev1.ServicePort{}, nil, fmt.Errorf("reading the endpoint slices of %s: %w", spec, err)
	}
	return Backends(svc, eps, f)
}

// Backends is what kube-proxy does with a connection to the Service's port f.Port: the
// Service port of that number and protocol, and every ready endpoint of the Service's IPv4
// endpoint slices with the port that slice gives it (the EndpointSlice controller resolves
// the targetPort per pod, a name through each pod's own container ports, and groups pods by
// the result). Each backend then is the flow's real destination, which security groups and
// policies judge. A Service without a ready backend on that port is ErrNoBackends.
func Backends(svc *corev1.Service, eps []discoveryv1.EndpointSlice, f Flow) (corev1.ServicePort, []Backend, error) {
	name := "svc/" + svc.Namespace + "/" + svc.Name
	var proto corev1.Protocol
	switch f.Protocol {
	case cloud.ProtocolTCP:
		proto = corev1.ProtocolTCP
	case cloud.ProtocolUDP:
		proto = corev1.ProtocolUDP
	default:
		return corev1.ServicePort{}, nil, fmt.Errorf("%s: a Service forwards TCP and UDP ports, not %s", name, f.Protocol)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return corev1.ServicePort{}, nil, fmt.Errorf("%s is an ExternalName Service (%s): DNS answers it, kube-proxy forwards nothing", name, svc.Spec.ExternalName)
	}
	sp, err := servicePort(svc, f.Port, proto)
	if err != nil {
		return corev1.ServicePort{}, nil, err
	}
	out := sliceBackends(svc.Namespace, sp, eps, f.Port, proto)
	if len(out) == 0 {
		return sp, nil, fmt.Errorf("%s port %d/%s: %w (its endpoint slices list none ready: kube-proxy rejects the connection)", name, f.Port, proto, ErrNoBackends)
	}
	return sp, out, nil
}

// servicePort is the Service's port of that number and protocol.
func servicePort(svc *corev1.Service, port int, proto corev1.Protocol) (corev1.ServicePort, error) {
	var have []string
	for _, p := range svc.Spec.Ports {
		if int(p.Port) == port && cmp.Or(p.Protocol, corev1.ProtocolTCP) == proto {
			return p, nil
		}
		have = append(have, fmt.Sprintf("%d/%s", p.Port, cmp.Or(p.Protocol, corev1.ProtocolTCP)))
	}
	return corev1.ServicePort{}, fmt.Errorf("svc/%s/%s has no port %d/%s (its ports: %s)", svc.Namespace, svc.Name, port, proto, orNone(strings.Join(have, ", ")))
}

// sliceBackends are the ready endpoints of the IPv4 slices that carry the Service port, with
// the number each slice gives it (the port itself when the slice leaves it unset).
func sliceBackends(namespace string, sp corev1.ServicePort, eps []discoveryv1.EndpointSlice, port int, proto corev1.Protocol) []Backend {
	var out []Backend
	for _, s := range eps {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue // reach judges IPv4 only, as security groups here
		}
		target, ok := slicePort(s, sp.Name, proto)
		if !ok {
			continue
		}
		if target == 0 {
			target = port
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready || len(e.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(e.Addresses[0]) // kube-proxy uses the first address
			if err != nil {
				continue
			}
			b := Backend{Spec: ip.String(), IP: ip, Port: target}
			if r := e.TargetRef; r != nil && r.Kind == "Pod" {
				b.Spec = PodPrefix + cmp.Or(r.Namespace, namespace) + "/" + r.Name
			}
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Backend) int { return cmp.Compare(a.Spec, b.Spec) })
	return slices.CompactFunc(out, func(a, b Backend) bool { return a == b })
}

// slicePort is the number the slice gives the Service port name (0: unset), if it has it.
func slicePort(s discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (int, bool) {
	for _, p := range s.Ports {
		pName, pProto := "", corev1.ProtocolTCP
		if p.Name != nil {
			pName = *p.Name
		}
		if p.Protocol != nil {
			pProto = *p.Protocol
		}
		if pName != name || pProto != proto {
			continue
		}
		if p.Port == nil {
			return 0, true
		}
		return int(*p.Port), true
	}
	return 0, false
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
