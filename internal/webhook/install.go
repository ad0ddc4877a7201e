// Package webhook puts podsg's admission webhooks in front of the apiserver: the serving
// certificate every podsg-controller replica shares, and the webhook configurations, generated
// from the markers (config/webhook), pointed at the replicas. The handlers themselves are in
// internal/webhook/pod: security groups (a branch ENI request) and IAM roles for service
// accounts (the pod identity webhook).
package webhook

import (
	"context"
	"net"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Paths the pod webhooks are served on (internal/webhook/pod; its markers repeat them for the
// generated configurations). MutatePath and ValidatePath match AWS's VPC resource controller's,
// so configurations written for it can point at ours, and podsg explain finds either by them.
// IdentityPath is the pod identity webhook's (AWS's serves it at /mutate of its own server).
const (
	MutatePath   = "/mutate-v1-pod"
	ValidatePath = "/validate-v1-pod"
	IdentityPath = "/mutate-v1-pod-identity"
)

// ServiceName is the Service the in-cluster deployment puts in front of the webhooks.
const ServiceName = "podsg-webhook-service"

// Endpoint says where the webhooks are served.
type Endpoint struct {
	// Namespace holds the Service, the certificate Secret and podsg-controller itself.
	Namespace string
	// Host, when set, registers the webhooks by URL at Host:Port (podsg-controller running
	// outside the cluster); otherwise by the Service ServiceName in Namespace.
	Host string
	Port int
	// CertDir receives tls.crt and tls.key for the webhook server.
	CertDir string
	// IdentityNamespaceSelector, when not nil, limits the pod identity webhook to the
	// namespaces it selects (podsg-controller's --identity-webhook-namespace-selector); nil
	// serves every namespace but the exempt ones, as EKS serves every namespace.
	IdentityNamespaceSelector *metav1.LabelSelector
	// ControllerUsername is the user podsg-controller writes pod annotations as: the
	// validating webhook lets it, and the apiserver does not even ask for its writes.
	ControllerUsername string
}

// Install writes the serving certificate into e.CertDir and creates or updates the webhook
// configurations with its CA. Every replica does the same; the writes are idempotent.
func Install(ctx context.Context, kube client.Client, e Endpoint) error {
	hosts := []string{ServiceName + "." + e.Namespace + ".svc", ServiceName + "." + e.Namespace + ".svc.cluster.local"}
	t := target{service: ServiceName, namespace: e.Namespace, port: 443}
	if e.Host != "" {
		hosts = append([]string{e.Host}, hosts...)
		t = target{url: "https://" + net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), namespace: e.Namespace}
	}
	var err error
	// The Secret podsg-webhook-cert holds the certificate and its CA, shared by every replica.
	if t.caBundle, err = servingCert(ctx, kube, e.Namespace, "podsg-webhook-cert", e.CertDir, hosts); err != nil {
		return err
	}
	return ensureConfigurations(ctx, kube, t, e.IdentityNamespaceSelector, e.ControllerUsername)
}
