package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/testenv"
)

// identityCluster is a real apiserver (the service-account issuer) with podsg's pod webhooks,
// the pod identity webhook among them, and a namespace for the test's pods. No kubelet: the
// test asks for each pod's projected token as the kubelet does.
type identityCluster struct {
	env *testenv.Env
	ns  string
}

// startIdentityCluster starts it with the webhook pointing pods' SDKs at the local VPC's API
// at vpcURL (--local-vpc-endpoint).
func startIdentityCluster(t *testing.T, vpcURL string) *identityCluster {
	t.Helper()
	env := testenv.Start(t, testenv.Options{Webhooks: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}}})
	controllertest.PodWebhooks(t, env, podidentity.Options{Region: "us-west-2", LocalVPCEndpoint: vpcURL})
	return &identityCluster{env: env, ns: controllertest.Namespace(t, env.Client, "irsa")}
}

// pod creates ServiceAccount sa annotated with role, as `eksctl create iamserviceaccount`
// does, and a pod of it through the webhooks, and returns the pod as admitted. Pods are
// created until one is mutated: the webhook server starts asynchronously (and fails closed
// until then); a pod admitted without the role is deleted and made again.
func (k *identityCluster) pod(t *testing.T, sa, role string) *corev1.Pod {
	t.Helper()
	c := k.env.Client
	controllertest.Create(t, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: sa,
		Annotations: map[string]string{podidentity.AnnotationRoleARN: role}}})
	var p *corev1.Pod
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		p = controllertest.Pod(k.ns, "", sa)
		p.GenerateName = sa + "-"
		if err := c.Create(ctx, p); err != nil {
			return err
		}
		if roleARN(p) == "" {
			_ = c.Delete(ctx, p)
			return errors.New("the pod identity webhook has not mutated a pod yet")
		}
		return nil
	})
	return p
}

// projectedToken is what the kubelet puts in the pod's token file: a TokenRequest with the
// audience and lifetime of the aws-iam-token volume the webhook added, bound to the pod. It
// returns the pod's AWS_ROLE_ARN with it.
func (k *identityCluster) projectedToken(t *testing.T, p *corev1.Pod) (role, token string) {
	t.Helper()
	for _, v := range p.Spec.Volumes {
		if v.Name != "aws-iam-token" || v.Projected == nil || len(v.Projected.Sources) != 1 || v.Projected.Sources[0].ServiceAccountToken == nil {
			continue
		}
		proj := v.Projected.Sources[0].ServiceAccountToken
		if proj.Audience != "sts.amazonaws.com" {
			t.Fatalf("pod %s: token audience %q, want sts.amazonaws.com", p.Name, proj.Audience)
		}
		return roleARN(p), k.token(t, p.Spec.ServiceAccountName, proj.Audience, proj.ExpirationSeconds, p)
	}
	t.Fatalf("pod %s has no projected token volume aws-iam-token: %v", p.Name, p.Spec.Volumes)
	return "", ""
}

// token asks the apiserver for a token of ServiceAccount sa for audience, bound to pod when
// pod is not nil (lifetime: the apiserver's default when nil).
func (k *identityCluster) token(t *testing.T, sa, audience string, seconds *int64, pod *corev1.Pod) string {
	t.Helper()
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: seconds}}
	if pod != nil {
		tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	obj := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: sa}}
	if err := k.env.Client.SubResource("token").Create(t.Context(), obj, tr); err != nil {
		t.Fatalf("requesting a token of %s/%s: %v", k.ns, sa, err)
	}
	return tr.Status.Token
}

// roleARN is the AWS_ROLE_ARN the webhook gave the pod's first container, "" for none.
func roleARN(p *corev1.Pod) string {
	for _, e := range p.Spec.Containers[0].Env {
		if e.Name == podidentity.EnvRoleARN {
			return e.Value
		}
	}
	return ""
}
