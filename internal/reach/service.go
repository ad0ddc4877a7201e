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
	"k8s.io/apimachinery/pkg/labels"

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
// connection (or, headless, DNS has no address for it), so no network layer is asked.
var ErrNoBackends = errors.New("no ready backend")

// Route is where a connection to a Service goes: the ready backends, each on the port the
// flow arrives at there.
type Route struct {
	// Port is the Service port the flow uses (for a headless Service, the one of that number
	// if it has one; else the zero value).
	Port corev1.ServicePort
	// Headless: the Service has no ClusterIP (clusterIP: None). DNS answers its name with the
	// ready endpoints' addresses and the client connects to one of them directly, on the port
	// it dials: kube-proxy translates nothing, and the Service's ports only name ports in
	// DNS SRV records.
	Headless bool
	Backends []Backend
}

// ParseService reads svc/NAMESPACE/NAME.
func ParseService(spec string) (namespace, name string, err error) {
	ns, name, ok := strings.Cut(strings.TrimPrefix(spec, ServicePrefix), "/")
	if !strings.HasPrefix(spec, ServicePrefix) || !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q: want svc/NAMESPACE/NAME", spec)
	}
	return ns, name, nil
}

// LoadBackends reads the Service spec names and its endpoint slices, and returns where the
// flow goes (Backends).
func LoadBackends(ctx context.Context, svcs Services, spec string, f Flow) (Route, error) {
	ns, name, err := ParseService(spec)
	if err != nil {
		return Route{}, err
	}
	if svcs == nil {
		return Route{}, fmt.Errorf("%s: naming a Service needs a Kubernetes cluster (--kubeconfig)", spec)
	}
	svc, err := svcs.GetService(ctx, ns, name)
	if err != nil {
		return Route{}, fmt.Errorf("reading %s: %w", spec, err)
	}
	eps, err := svcs.EndpointSlices(ctx, ns, name)
	if err != nil {
		return Route{}, fmt.Errorf("reading the endpoint slices of %s: %w", spec, err)
	}
	return Backends(svc, eps, f)
}

// Backends is where a connection to the Service's port f.Port goes. Through a ClusterIP,
// kube-proxy sends it to the Service port of that number and protocol on one ready endpoint
// of the Service's IPv4 endpoint slices, at the port that slice gives it (the EndpointSlice
// controller resolves the targetPort per pod, a name through each pod's own container ports,
// and groups pods by the result). A headless Service's client connects to a ready endpoint's
// address itself, at f.Port (Route.Headless). Each backend then is the flow's real
// destination, which security groups and policies judge. No ready backend is ErrNoBackends,
// with the reason (no endpoint, none ready, none on that port).
func Backends(svc *corev1.Service, eps []discoveryv1.EndpointSlice, f Flow) (Route, error) {
	name := "svc/" + svc.Namespace + "/" + svc.Name
	var proto corev1.Protocol
	switch f.Protocol {
	case cloud.ProtocolTCP:
		proto = corev1.ProtocolTCP
	case cloud.ProtocolUDP:
		proto = corev1.ProtocolUDP
	default:
		return Route{}, fmt.Errorf("%s: a Service forwards TCP and UDP ports, not %s", name, f.Protocol)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return Route{}, fmt.Errorf("%s is an ExternalName Service (%s): DNS answers it, kube-proxy forwards nothing", name, svc.Spec.ExternalName)
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		r := Route{Headless: true, Backends: headlessBackends(svc.Namespace, eps, f.Port)}
		r.Port, _ = servicePort(svc, f.Port, proto)
		if len(r.Backends) == 0 {
			return r, fmt.Errorf("%s is headless and %s: %w: DNS has no address for its name, so there is nothing to connect to",
				name, whyNoBackend(svc, eps, nil), ErrNoBackends)
		}
		return r, nil
	}
	sp, err := servicePort(svc, f.Port, proto)
	if err != nil {
		return Route{}, err
	}
	r := Route{Port: sp, Backends: sliceBackends(svc.Namespace, sp, eps, f.Port, proto)}
	if len(r.Backends) == 0 {
		return r, fmt.Errorf("%s port %d/%s: %w: %s, so kube-proxy rejects the connection (TCP: connection refused)",
			name, f.Port, proto, ErrNoBackends, whyNoBackend(svc, eps, &sp))
	}
	return r, nil
}

// whyNoBackend says why the slices give no ready backend (on the Service port sp, when not
// headless): no endpoint at all (and why there may be none), none ready (naming them), or
// none in a slice carrying the port.
func whyNoBackend(svc *corev1.Service, eps []discoveryv1.EndpointSlice, sp *corev1.ServicePort) string {
	var all, ready []string
	for _, s := range eps {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			spec := e.Addresses[0]
			if r := e.TargetRef; r != nil && r.Kind == "Pod" {
				spec = PodPrefix + cmp.Or(r.Namespace, svc.Namespace) + "/" + r.Name
			}
			all = append(all, spec)
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready = append(ready, spec)
			}
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	switch {
	case len(all) == 0 && len(svc.Spec.Selector) == 0:
		return "it has no selector and no endpoint slice lists an IPv4 endpoint: nothing is behind it"
	case len(all) == 0:
		return fmt.Sprintf("its selector (%s) matches no pod with an IPv4 address: its endpoint slices list no endpoint", labels.Set(svc.Spec.Selector))
	case len(ready) == 0:
		return fmt.Sprintf("none of its %d endpoints is ready (%s: not ready, or terminating)", len(all), strings.Join(all, ", "))
	}
	return fmt.Sprintf("its ready endpoints (%s) are in no endpoint slice that carries port %s", strings.Join(ready, ", "), cmp.Or(sp.Name, "(unnamed)"))
}

// headlessBackends are the ready endpoints of the IPv4 slices (once each: an endpoint is in
// a slice per port), every one at port: the client dials the address DNS gave it.
func headlessBackends(namespace string, eps []discoveryv1.EndpointSlice, port int) []Backend {
	var out []Backend
	for _, s := range eps {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		out = append(out, readyEndpoints(namespace, s, port)...)
	}
	slices.SortFunc(out, func(a, b Backend) int { return cmp.Compare(a.Spec, b.Spec) })
	return slices.CompactFunc(out, func(a, b Backend) bool { return a == b })
}

// readyEndpoints are the slice's ready endpoints, each at port.
func readyEndpoints(namespace string, s discoveryv1.EndpointSlice, port int) []Backend {
	var out []Backend
	for _, e := range s.Endpoints {
		if e.Conditions.Ready != nil && !*e.Conditions.Ready || len(e.Addresses) == 0 {
			continue
		}
		ip, err := netip.ParseAddr(e.Addresses[0]) // kube-proxy uses the first address
		if err != nil {
			continue
		}
		b := Backend{Spec: ip.String(), IP: ip, Port: port}
		if r := e.TargetRef; r != nil && r.Kind == "Pod" {
			b.Spec = PodPrefix + cmp.Or(r.Namespace, namespace) + "/" + r.Name
		}
		out = append(out, b)
	}
	return out
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
		out = append(out, readyEndpoints(namespace, s, target)...)
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
