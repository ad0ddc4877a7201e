package cluster

import (
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig that authenticates with a client certificate. The
// certificate and CA are embedded, so the file can be copied anywhere (into a node's state
// dir, or to a user's machine).
func writeKubeconfig(path, server string, p pki, certName, user string) error {
	ca, err := os.ReadFile(p.caFile())
	if err != nil {
		return fmt.Errorf("reading CA: %w", err)
	}
	cert, err := os.ReadFile(p.path(certName, "crt"))
	if err != nil {
		return fmt.Errorf("reading certificate %s: %w", certName, err)
	}
	key, err := os.ReadFile(p.path(certName, "key"))
	if err != nil {
		return fmt.Errorf("reading key %s: %w", certName, err)
	}
	const name = "podsg-local"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: user}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}
