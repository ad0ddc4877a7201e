package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func (c *ControlPlane) daemon(name string, args ...string) daemon {
	return daemon{
		name: name, dir: filepath.Join(c.opts.StateDir, "run"), bin: filepath.Join(c.opts.BinDir, name),
		args: args, home: c.opts.StateDir, killWithParent: c.opts.KillWithParent,
	}
}

func (c *ControlPlane) etcd() daemon {
	client := "http://127.0.0.1:" + strconv.Itoa(c.opts.Ports.Etcd)
	peer := "http://127.0.0.1:" + strconv.Itoa(c.opts.Ports.EtcdPeer)
	return c.daemon("etcd",
		"--name=podsg", "--data-dir="+filepath.Join(c.opts.StateDir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=podsg="+peer,
	)
}

func (c *ControlPlane) apiserver() daemon {
	p, addr := c.pki, c.opts.APIServerAddress
	args := []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(c.opts.Ports.Etcd),
		"--bind-address=" + addr, "--advertise-address=" + addr,
		"--secure-port=" + strconv.Itoa(c.opts.Ports.APIServer),
		"--tls-cert-file=" + p.path("apiserver", "crt"), "--tls-private-key-file=" + p.path("apiserver", "key"),
		"--client-ca-file=" + p.caFile(),
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		// The issuer is the apiserver itself, which serves /.well-known/openid-configuration and
		// the JWKS: what an IRSA-style OIDC provider needs to verify projected tokens.
		"--service-account-issuer=" + c.URL(), "--service-account-jwks-uri=" + c.URL() + "/openid/v1/jwks",
		"--service-account-key-file=" + p.path("sa", "pub"), "--service-account-signing-key-file=" + p.path("sa", "key"),
		"--service-cluster-ip-range=" + c.opts.ServiceCIDR,
		"--allow-privileged=true", "--profiling=false",
		// Webhooks registered by Service (podsg-controller in-cluster) are dialled at the
		// Service's endpoints, the pods' addresses, as EKS's control plane, which runs no
		// kube-proxy either, reaches them: the apiserver's namespace has no route to ClusterIPs.
		"--enable-aggregator-routing=true",
		// logs/exec: the apiserver dials the kubelet at the node's InternalIP (never a hostname,
		// which would mean a DNS lookup) and verifies its serving certificate with our CA.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority=" + p.caFile(),
		"--kubelet-client-certificate=" + p.path("apiserver-kubelet-client", "crt"),
		"--kubelet-client-key=" + p.path("apiserver-kubelet-client", "key"),
	}
	if net.ParseIP(addr).IsLoopback() {
		// The apiserver refuses to advertise loopback in the kubernetes Endpoints otherwise.
		args = append(args, "--endpoint-reconciler-type=none")
	}
	return c.daemon("kube-apiserver", args...)
}

func (c *ControlPlane) scheduler() daemon {
	kc := filepath.Join(c.opts.StateDir, "kube-scheduler.kubeconfig")
	return c.daemon("kube-scheduler",
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.opts.Ports.Scheduler),
	)
}

func (c *ControlPlane) controllerManager() daemon {
	kc := filepath.Join(c.opts.StateDir, "kube-controller-manager.kubeconfig")
	p := c.pki
	return c.daemon("kube-controller-manager",
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(c.opts.Ports.ControllerManager),
		// Each controller gets its own ServiceAccount token, as in a real cluster's RBAC.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p.path("sa", "key"), "--root-ca-file="+p.caFile(),
		"--cluster-signing-cert-file="+p.caFile(), "--cluster-signing-key-file="+p.path("ca", "key"),
		"--controllers=*",
	)
}

// ensureCredentials writes every certificate and kubeconfig the plane needs, keeping
// existing ones.
func (c *ControlPlane) ensureCredentials() error {
	p := c.pki
	if err := p.ensureCA(); err != nil {
		return err
	}
	if err := p.ensureServiceAccountKey(); err != nil {
		return err
	}
	_, svcNet, err := net.ParseCIDR(c.opts.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("parsing service CIDR: %w", err)
	}
	firstSvc := append(net.IP(nil), svcNet.IP.To4()...)
	firstSvc[3]++ // the kubernetes Service's ClusterIP
	specs := []certSpec{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			ips: []net.IP{net.ParseIP(c.opts.APIServerAddress), net.IPv4(127, 0, 0, 1), firstSvc},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
		{name: "admin", cn: "podsg-admin", orgs: []string{"system:masters"}, client: true},
		{name: "kube-scheduler", cn: "system:kube-scheduler", client: true},
		{name: "kube-controller-manager", cn: "system:kube-controller-manager", client: true},
	}
	for _, s := range specs {
		if err := p.ensure(s); err != nil {
			return err
		}
	}
	for file, cert := range map[string]string{
		c.AdminKubeconfig(): "admin",
		filepath.Join(c.opts.StateDir, "kube-scheduler.kubeconfig"):          "kube-scheduler",
		filepath.Join(c.opts.StateDir, "kube-controller-manager.kubeconfig"): "kube-controller-manager",
	} {
		if err := writeKubeconfig(file, c.URL(), p, cert, cert); err != nil {
			return err
		}
	}
	return nil
}

// httpGetOK performs a GET and fails unless the answer is 200.
func httpGetOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func (c *ControlPlane) etcdReady(ctx context.Context) error {
	return httpGetOK(ctx, &http.Client{Timeout: 2 * time.Second}, "http://127.0.0.1:"+strconv.Itoa(c.opts.Ports.Etcd)+"/health")
}

// apiserverReady asks /readyz as the admin, verifying the server against our CA.
func (c *ControlPlane) apiserverReady(ctx context.Context) error {
	caPEM, err := os.ReadFile(c.pki.caFile())
	if err != nil {
		return fmt.Errorf("reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(c.pki.path("admin", "crt"), c.pki.path("admin", "key"))
	if err != nil {
		return fmt.Errorf("loading admin certificate: %w", err)
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}
	return httpGetOK(ctx, hc, c.URL()+"/readyz")
}

// componentHealthy polls the scheduler's or controller manager's /healthz on loopback. They
// serve it with a self-signed certificate generated at start, so it cannot be verified.
func (c *ControlPlane) componentHealthy(ctx context.Context, port int) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe only
	}}
	return httpGetOK(ctx, hc, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz")
}
