package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// NodeCredentials are the files a node's kubelet needs, all signed by the cluster CA.
type NodeCredentials struct {
	// Kubeconfig authenticates as system:node:<name> in group system:nodes, which the Node
	// authorizer and NodeRestriction admission limit to the node's own objects.
	Kubeconfig string
	// CAFile verifies clients of the kubelet's API (the apiserver, for logs/exec).
	CAFile string
	// ServingCert and ServingKey are the kubelet's serving certificate for the node IP; the
	// apiserver verifies it (--kubelet-certificate-authority).
	ServingCert, ServingKey string
	// ProxyKubeconfig authenticates kube-proxy as system:kube-proxy, the user the default
	// system:node-proxier ClusterRoleBinding names: one identity for every node, as on EKS.
	ProxyKubeconfig string
}

// IssueNode writes credentials for a node named name at nodeIP into dir.
func (c *ControlPlane) IssueNode(name, nodeIP, dir string) (NodeCredentials, error) {
	ip := net.ParseIP(nodeIP)
	if ip == nil {
		return NodeCredentials{}, fmt.Errorf("issuing node credentials: node IP %q is not an IP", nodeIP)
	}
	if err := c.pki.ensureCA(); err != nil {
		return NodeCredentials{}, err
	}
	// Issued into the plane's pki (so they are reused) and copied into the node's dir.
	client, serving := "node-"+name, "node-"+name+"-serving"
	specs := []certSpec{
		{name: client, cn: "system:node:" + name, orgs: []string{"system:nodes"}, client: true},
		{name: serving, cn: "system:node:" + name, orgs: []string{"system:nodes"}, server: true, ips: []net.IP{ip}, dns: []string{name}},
		{name: "kube-proxy", cn: "system:kube-proxy", client: true},
	}
	for _, s := range specs {
		if err := c.pki.ensure(s); err != nil {
			return NodeCredentials{}, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return NodeCredentials{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	creds := NodeCredentials{
		Kubeconfig:  filepath.Join(dir, "kubelet.kubeconfig"),
		CAFile:      filepath.Join(dir, "ca.crt"),
		ServingCert: filepath.Join(dir, "kubelet.crt"),
		ServingKey:  filepath.Join(dir, "kubelet.key"),

		ProxyKubeconfig: filepath.Join(dir, "kube-proxy.kubeconfig"),
	}
	if err := writeKubeconfig(creds.Kubeconfig, c.URL(), c.pki, client, "system:node:"+name); err != nil {
		return NodeCredentials{}, err
	}
	if err := writeKubeconfig(creds.ProxyKubeconfig, c.URL(), c.pki, "kube-proxy", "system:kube-proxy"); err != nil {
		return NodeCredentials{}, err
	}
	for src, dst := range map[string]string{
		c.pki.caFile():             creds.CAFile,
		c.pki.path(serving, "crt"): creds.ServingCert,
		c.pki.path(serving, "key"): creds.ServingKey,
	} {
		if err := copyFile(src, dst); err != nil {
			return NodeCredentials{}, err
		}
	}
	return creds, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}
