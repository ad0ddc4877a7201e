package reach_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/reach"
)

func svcPort(name string, port int32, proto corev1.Protocol, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: proto, TargetPort: target}
}

// slice is an endpoint slice of service web giving the port name the number port, with
// endpoints "pod-name=ip" (a trailing "!" marks one not ready; no "=": not a pod).
func slice(addrType discoveryv1.AddressType, portName string, proto corev1.Protocol, port int32, eps ...string) discoveryv1.EndpointSlice {
	s := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: addrType, Ports: []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}}}
	for _, e := range eps {
		ready := !strings.HasSuffix(e, "!")
		e = strings.TrimSuffix(e, "!")
		ep := discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		if name, ip, ok := strings.Cut(e, "="); ok {
			ep.Addresses, ep.TargetRef = []string{ip}, &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: name}
		} else {
			ep.Addresses = []string{e}
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// TestBackends: a connection to a Service's port reaches each ready backend on the port
// kube-proxy translates it to, which the endpoint slices hold per pod (a named targetPort
// may resolve to other numbers on other pods).
func TestBackends(t *testing.T) {
	tcp := corev1.ProtocolTCP
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{svcPort("http", 80, tcp, intstr.FromString("http")), svcPort("metrics", 9100, corev1.ProtocolUDP, intstr.FromInt32(9100))}}}
	unnamed := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{svcPort("", 80, "", intstr.FromInt32(8080))}}}
	external := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}
	headless := web.DeepCopy()
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	selectorless := web.DeepCopy()
	web.Spec.Selector = map[string]string{"app": "web"}
	headless.Spec.Selector = web.Spec.Selector
	tcpFlow := func(p int) reach.Flow { return reach.Flow{Protocol: cloud.ProtocolTCP, Port: p} }
	tests := map[string]struct {
		svc    *corev1.Service
		slices []discoveryv1.EndpointSlice
		flow   reach.Flow
		want   []string // "spec:port"
		// headless: the Route says so
		headless bool
		wantErr  string
	}{
		"a named targetPort resolved per pod, not-ready left out": {svc: web, flow: tcpFlow(80), slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 8080, "web-1=10.0.0.7", "web-2=10.0.0.8!"),
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 9090, "web-3=10.0.0.9"),
			slice(discoveryv1.AddressTypeIPv6, "http", tcp, 8080, "web-1=fd00::7"),
		}, want: []string{"pod/shop/web-1:8080", "pod/shop/web-3:9090"}},
		"UDP port of its own": {svc: web, flow: reach.Flow{Protocol: cloud.ProtocolUDP, Port: 9100}, slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 8080, "web-1=10.0.0.7"),
			slice(discoveryv1.AddressTypeIPv4, "metrics", corev1.ProtocolUDP, 9100, "web-1=10.0.0.7"),
		}, want: []string{"pod/shop/web-1:9100"}},
		"an unnamed port, an endpoint that is no pod": {svc: unnamed, flow: tcpFlow(80), slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "", tcp, 8080, "10.0.5.5"),
		}, want: []string{"10.0.5.5:8080"}},
		"no such port":      {svc: web, flow: tcpFlow(443), wantErr: "svc/shop/web has no port 443/TCP (its ports: 80/TCP, 9100/UDP)"},
		"the port over UDP": {svc: web, flow: reach.Flow{Protocol: cloud.ProtocolUDP, Port: 80}, wantErr: "has no port 80/UDP"},
		"icmp":              {svc: web, flow: reach.Flow{Protocol: cloud.ProtocolICMP, ICMPType: 8}, wantErr: "a Service forwards TCP and UDP ports, not icmp"},
		"ExternalName":      {svc: external, flow: tcpFlow(80), wantErr: "is an ExternalName Service (example.com)"},
		"no ready backend": {svc: web, flow: tcpFlow(80), slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 8080, "web-2=10.0.0.8!", "web-3=10.0.0.9!")},
			wantErr: "svc/shop/web port 80/TCP: no ready backend: none of its 2 endpoints is ready (pod/shop/web-2, pod/shop/web-3: not ready, or terminating), so kube-proxy rejects the connection"},
		"the selector matches no pod": {svc: web, flow: tcpFlow(80), slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 8080)},
			wantErr: "no ready backend: its selector (app=web) matches no pod with an IPv4 address: its endpoint slices list no endpoint, so kube-proxy"},
		"no selector, no slice": {svc: selectorless, flow: tcpFlow(80),
			wantErr: "no ready backend: it has no selector and no endpoint slice lists an IPv4 endpoint: nothing is behind it"},
		"ready endpoints without the port": {svc: web, flow: tcpFlow(80), slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "grpc", tcp, 8080, "web-1=10.0.0.7")},
			wantErr: "no ready backend: its ready endpoints (pod/shop/web-1) are in no endpoint slice that carries port http"},
		"headless: every ready endpoint, at the port dialled": {svc: headless, flow: tcpFlow(8080), headless: true, slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 9090, "web-1=10.0.0.7", "web-2=10.0.0.8!"),
			slice(discoveryv1.AddressTypeIPv4, "metrics", corev1.ProtocolUDP, 9100, "web-1=10.0.0.7", "web-3=10.0.0.9"),
			slice(discoveryv1.AddressTypeIPv6, "http", tcp, 9090, "web-4=fd00::7"),
		}, want: []string{"pod/shop/web-1:8080", "pod/shop/web-3:8080"}},
		"headless: a port the Service does not list": {svc: headless, flow: tcpFlow(443), headless: true, slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 9090, "web-1=10.0.0.7")}, want: []string{"pod/shop/web-1:443"}},
		"headless without a ready endpoint": {svc: headless, flow: tcpFlow(80), slices: []discoveryv1.EndpointSlice{
			slice(discoveryv1.AddressTypeIPv4, "http", tcp, 9090, "web-2=10.0.0.8!")},
			wantErr: "svc/shop/web is headless and none of its 1 endpoints is ready (pod/shop/web-2: not ready, or terminating): no ready backend: DNS has no address for its name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			route, err := reach.Backends(tc.svc, tc.slices, tc.flow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if strings.Contains(tc.wantErr, "no ready backend") != errors.Is(err, reach.ErrNoBackends) {
					t.Errorf("error %v: errors.Is ErrNoBackends %v", err, errors.Is(err, reach.ErrNoBackends))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if route.Headless != tc.headless {
				t.Errorf("headless %v, want %v", route.Headless, tc.headless)
			}
			var specs []string
			for _, b := range route.Backends {
				specs = append(specs, fmt.Sprintf("%s:%d", b.Spec, b.Port))
			}
			if strings.Join(specs, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("backends %v, want %v", specs, tc.want)
			}
		})
	}
}

func TestParseService(t *testing.T) {
	for spec, wantErr := range map[string]bool{"svc/shop/web": false, "svc/shop": true, "svc//web": true, "svc/shop/web/x": true, "pod/shop/web": true} {
		if _, _, err := reach.ParseService(spec); (err != nil) != wantErr {
			t.Errorf("ParseService(%q) = %v, want error %v", spec, err, wantErr)
		}
	}
}
