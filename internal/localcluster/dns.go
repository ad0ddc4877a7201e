package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/vpc/resolver"
	"github.com/podsg/podsg/internal/vpc/state"
)

// ClusterDNSIP is the kube-dns Service's ClusterIP, the kubelets' clusterDNS: the tenth address
// of the Service CIDR (10.100.0.0/16), as on EKS.
const ClusterDNSIP = "10.100.0.10"

// vpcResolver is the cluster VPC's resolver, which podsg-vpc serves at the VPC's base address
// + 2 (AmazonProvidedDNS: instances' private DNS names, RDS endpoints, NXDOMAIN for the rest).
// CoreDNS forwards to it as it forwards to the VPC's resolver on EKS.
func vpcResolver() string { return resolver.Address(netip.MustParsePrefix(VPCCIDR)).String() }

// waitResolver waits until the VPC's resolver answers the host ENI's private DNS name. The
// root namespace routes the VPC's CIDR through its host ENI into the fabric, where the
// resolver listens: the query stays in namespaces podsg-vpc made.
func waitResolver(ctx context.Context, hostIP string) error {
	server := vpcResolver()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, network, net.JoinHostPort(server, "53"))
	}}
	name := state.PrivateDNSName(Region, hostIP)
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		addrs, err := r.LookupHost(ctx, name)
		if last = err; err != nil {
			return false, nil //nolint:nilerr // not answering yet; last says why if it never does
		}
		if len(addrs) != 1 || addrs[0] != hostIP {
			last = fmt.Errorf("%s resolved to %v, want %s", name, addrs, hostIP)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the VPC resolver on %s:53: %w (last: %w)", server, err, last)
	}
	return nil
}

// coreDNSManifests are CoreDNS as EKS installs it: a Deployment of two replicas in kube-system
// behind the kube-dns Service, with the ServiceAccount and RBAC its kubernetes plugin needs,
// forwarding what is not the cluster's to the VPC's resolver. The image is the coredns binary
// of hack/kube-bin.sh, imported into every node.
func coreDNSManifests(resolverIP string) string {
	return `apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns", labels: {eks.amazonaws.com/component: coredns, k8s-app: kube-dns}}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns", labels: {eks.amazonaws.com/component: coredns, k8s-app: kube-dns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system, labels: {eks.amazonaws.com/component: coredns, k8s-app: kube-dns}}
data:
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes ` + cluster.ClusterDomain + ` in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        prometheus :9153
        forward . ` + resolverIP + `
        cache 30
        loop
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {eks.amazonaws.com/component: coredns, k8s-app: kube-dns}}
spec:
  replicas: 2
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  selector: {matchLabels: {eks.amazonaws.com/component: coredns, k8s-app: kube-dns}}
  template:
    metadata: {labels: {eks.amazonaws.com/component: coredns, k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector: {matchLabels: {k8s-app: kube-dns}}
      containers:
      - name: coredns
        image: ` + images.CoreDNS + `
        imagePullPolicy: IfNotPresent
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 60
          timeoutSeconds: 5
          failureThreshold: 5
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
        volumeMounts:
        - {name: config-volume, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config-volume
        configMap: {name: coredns, items: [{key: Corefile, path: Corefile}]}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {eks.amazonaws.com/component: kube-dns, k8s-app: kube-dns, kubernetes.io/cluster-service: "true", kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: ` + ClusterDNSIP + `
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
  - {name: metrics, port: 9153, protocol: TCP, targetPort: 9153}
`
}

// installCoreDNS applies CoreDNS's manifests and waits until its Deployment is available.
func (o *Options) installCoreDNS(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), resolverIP string) error {
	if _, err := kubectl(ctx, coreDNSManifests(resolverIP), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("installing CoreDNS: %w", err)
	}
	if _, err := kubectl(ctx, "", "--namespace=kube-system", "rollout", "status", "deployment/coredns", "--timeout=180s"); err != nil {
		return fmt.Errorf("waiting for CoreDNS: %w", err)
	}
	return nil
}
