package pod_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/webhook"
	"github.com/podsg/podsg/internal/webhook/pod"
)

const (
	testRole     = "arn:aws:iam::111122223333:role/rds-db-access"
	testEndpoint = "http://169.254.169.254:8450"
)

// TestIdentityWebhook runs the pod identity webhook on a real apiserver, registered exactly as
// podsg-controller registers it (webhook.Install: by URL, with the namespaceSelector that
// exempts kube-system and podsg's namespace and the objectSelector of AWS's skip label; last,
// with a namespace selector of its flag's).
func TestIdentityWebhook(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Webhooks: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}}})
	c := env.Client
	endpoint := controllertest.PodWebhooks(t, env, podidentity.Options{Region: "us-west-2", LocalVPCEndpoint: testEndpoint})

	ns := controllertest.Namespace(t, c, "identity")
	controllertest.Create(t, c, roleSA(ns, "rds-db-access"))
	// The webhooks fail closed and their server starts asynchronously: wait for a first mutation.
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		p := controllertest.Pod(ns, "probe", "rds-db-access")
		if err := c.Create(ctx, p); err != nil {
			return err
		}
		defer func() { _ = c.Delete(ctx, p) }()
		if !hasEnv(p.Spec.Containers[0], podidentity.EnvRoleARN) {
			return fmt.Errorf("probe pod not mutated yet")
		}
		return nil
	})

	t.Run("a pod whose ServiceAccount names a role gets everything", func(t *testing.T) { testGetsRole(t, env, ns) })
	t.Run("a pod whose ServiceAccount names no role gets nothing", func(t *testing.T) {
		controllertest.Create(t, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-role"}})
		p := twoContainers(ns, "no-role")
		p.Spec.ServiceAccountName = "no-role"
		controllertest.Create(t, c, p)
		expectUntouched(t, p)
	})
	t.Run("a pod whose ServiceAccount lost its annotation gets nothing", func(t *testing.T) { testLostAnnotation(t, c, ns) })
	t.Run("pods of an exempt namespace are untouched", func(t *testing.T) {
		for _, exempt := range []string{"kube-system", "podsg-system"} {
			controllertest.Create(t, c, roleSA(exempt, "rds-db-access"))
			p := controllertest.Pod(exempt, "exempt", "rds-db-access")
			controllertest.Create(t, c, p)
			expectUntouched(t, p)
		}
	})
	t.Run("skip-containers is honoured", func(t *testing.T) {
		p := twoContainers(ns, "skip")
		p.Annotations = map[string]string{podidentity.AnnotationSkipContainers: "sidecar"}
		controllertest.Create(t, c, p)
		expectRole(t, p, "app")
		sidecar := p.Spec.Containers[1]
		if len(sidecar.Env) != 0 || len(sidecar.VolumeMounts) != 0 {
			t.Fatalf("skipped container sidecar was mutated: env %v, mounts %v", sidecar.Env, sidecar.VolumeMounts)
		}
	})
	t.Run("the skip label keeps the webhook away", func(t *testing.T) {
		p := controllertest.Pod(ns, "opted-out", "rds-db-access")
		p.Labels = map[string]string{podidentity.LabelSkipWebhook: "true"}
		controllertest.Create(t, c, p)
		expectUntouched(t, p)
	})
	t.Run("a container's own role is kept", func(t *testing.T) {
		p := controllertest.Pod(ns, "own-role", "rds-db-access")
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: podidentity.EnvRoleARN, Value: "arn:aws:iam::111122223333:role/own"}}
		controllertest.Create(t, c, p)
		if got := envValue(p.Spec.Containers[0], podidentity.EnvRoleARN); got != "arn:aws:iam::111122223333:role/own" {
			t.Fatalf("AWS_ROLE_ARN = %q, want the container's own", got)
		}
		if hasEnv(p.Spec.Containers[0], podidentity.EnvTokenFile) {
			t.Fatalf("the webhook added %s beside the container's own role", podidentity.EnvTokenFile)
		}
	})
	// Last: it narrows the webhook for every subtest after it.
	t.Run("with a namespace selector, a namespace without its label is untouched", func(t *testing.T) {
		testNamespaceSelector(t, c, endpoint)
	})
}

// testNamespaceSelector installs the configurations again as podsg-controller does with
// --identity-webhook-namespace-selector=podsg.io/pod-identity=enabled: a pod of a role
// ServiceAccount in a namespace without that label gets nothing, one in a labelled namespace
// gets its role, and the exempt namespaces stay exempt even when labelled.
func testNamespaceSelector(t *testing.T, c client.Client, e webhook.Endpoint) {
	const label, value = "podsg.io/pod-identity", "enabled"
	e.IdentityNamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{label: value}}
	if err := webhook.Install(t.Context(), c, e); err != nil {
		t.Fatal(err)
	}
	plain := controllertest.Namespace(t, c, "identity-unlabelled")
	labelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "identity-labelled", Labels: map[string]string{label: value}}}
	controllertest.Create(t, c, labelled, roleSA(plain, "rds-db-access"), roleSA(labelled.Name, "rds-db-access"))
	// The apiserver reads webhook configurations through an informer: pods are created in the
	// unlabelled namespace until one comes out untouched, and that one must carry nothing.
	var untouched *corev1.Pod
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		untouched = controllertest.Pod(plain, "unlabelled", "rds-db-access")
		if err := c.Create(ctx, untouched); err != nil {
			return err
		}
		if hasEnv(untouched.Spec.Containers[0], podidentity.EnvRoleARN) {
			_ = c.Delete(ctx, untouched)
			return fmt.Errorf("the apiserver still sends pods of namespace %s to the pod identity webhook", plain)
		}
		return nil
	})
	expectUntouched(t, untouched)

	p := controllertest.Pod(labelled.Name, "labelled", "rds-db-access")
	controllertest.Create(t, c, p)
	expectRole(t, p, "app")

	exempt := &corev1.Namespace{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: controllertest.WebhookNamespace}, exempt); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(exempt.DeepCopy())
	exempt.Labels[label] = value
	if err := c.Patch(t.Context(), exempt, patch); err != nil {
		t.Fatal(err)
	}
	// Its role ServiceAccount, unless the exempt-namespace subtest made it: without it the pod
	// would be untouched for want of a role.
	if err := client.IgnoreAlreadyExists(c.Create(t.Context(), roleSA(exempt.Name, "rds-db-access"))); err != nil {
		t.Fatal(err)
	}
	p = controllertest.Pod(exempt.Name, "labelled-exempt", "rds-db-access")
	controllertest.Create(t, c, p)
	expectUntouched(t, p)
}

func roleSA(ns, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Annotations: map[string]string{podidentity.AnnotationRoleARN: testRole}}}
}

func twoContainers(ns, name string) *corev1.Pod {
	p := controllertest.Pod(ns, name, "rds-db-access")
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar", Image: p.Spec.Containers[0].Image})
	return p
}

func testGetsRole(t *testing.T, env *testenv.Env, ns string) {
	c := env.Client
	p := twoContainers(ns, "backend")
	p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: p.Spec.Containers[0].Image}}
	controllertest.Create(t, c, p)
	expectRole(t, p, "migrate", "app", "sidecar")
	vol := tokenVolume(t, p)
	if vol.Audience != "sts.amazonaws.com" || vol.ExpirationSeconds == nil || *vol.ExpirationSeconds != 86400 || vol.Path != "token" {
		t.Fatalf("projected token = %+v, want audience sts.amazonaws.com, 86400 s, path token", vol)
	}

	// The kubelet asks the apiserver for this token with the volume's audience and lifetime,
	// bound to the pod: so does the test, and the apiserver's answer is what STS will verify.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rds-db-access"}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{vol.Audience}, ExpirationSeconds: vol.ExpirationSeconds,
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}}}
	if err := c.SubResource("token").Create(t.Context(), sa, tr); err != nil {
		t.Fatalf("requesting the pod's token: %v", err)
	}
	claims := jwtClaims(t, tr.Status.Token)
	if claims.Sub != "system:serviceaccount:"+ns+":rds-db-access" || !slices.Equal(claims.Aud, []string{"sts.amazonaws.com"}) ||
		claims.Exp-claims.Iat != 86400 || claims.Kubernetes.Pod.Name != p.Name {
		t.Fatalf("token claims %+v: want sub system:serviceaccount:%s:rds-db-access, aud [sts.amazonaws.com], 86400 s, bound to pod %s", claims, ns, p.Name)
	}
	for aud, want := range map[string]bool{"sts.amazonaws.com": true, "another-audience": false} {
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token, Audiences: []string{aud}}}
		if err := c.Create(t.Context(), review); err != nil {
			t.Fatal(err)
		}
		if review.Status.Authenticated != want {
			t.Fatalf("token reviewed for audience %s: authenticated %v, want %v (%s)", aud, review.Status.Authenticated, want, review.Status.Error)
		}
	}
}

type claimSet struct {
	Iss, Sub   string
	Aud        []string
	Exp, Iat   int64
	Kubernetes struct {
		Pod struct{ Name string } `json:"pod"`
	} `json:"kubernetes.io"`
}

func jwtClaims(t *testing.T, token string) claimSet {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c claimSet
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// testLostAnnotation: pods created after the role annotation is removed get none of it. The
// webhook reads ServiceAccounts from its cache, so it sees the removal a moment later: pods
// are created until one comes out without a role, and that one must carry nothing of IRSA.
func testLostAnnotation(t *testing.T, c client.Client, ns string) {
	sa := roleSA(ns, "lost")
	controllertest.Create(t, c, sa)
	var before *corev1.Pod
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		before = controllertest.Pod(ns, "before", "lost")
		if err := c.Create(ctx, before); err != nil {
			return err
		}
		if !hasEnv(before.Spec.Containers[0], podidentity.EnvRoleARN) {
			_ = c.Delete(ctx, before)
			return fmt.Errorf("the webhook has not seen ServiceAccount lost yet")
		}
		return nil
	})
	expectRole(t, before, "app")

	patch := client.MergeFrom(sa.DeepCopy())
	delete(sa.Annotations, podidentity.AnnotationRoleARN)
	if err := c.Patch(t.Context(), sa, patch); err != nil {
		t.Fatal(err)
	}
	var after *corev1.Pod
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		after = controllertest.Pod(ns, "after", "lost")
		if err := c.Create(ctx, after); err != nil {
			return err
		}
		if hasEnv(after.Spec.Containers[0], podidentity.EnvRoleARN) {
			_ = c.Delete(ctx, after)
			return fmt.Errorf("the webhook still sees the role of ServiceAccount lost")
		}
		return nil
	})
	expectUntouched(t, after)
}

// expectRole checks that the named containers have everything the webhook gives, and the pod
// the token volume.
func expectRole(t *testing.T, p *corev1.Pod, names ...string) {
	t.Helper()
	want := map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"AWS_STS_REGIONAL_ENDPOINTS": "regional", "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2",
		"AWS_ENDPOINT_URL_STS": testEndpoint, "AWS_ENDPOINT_URL_IAM": testEndpoint, "AWS_ENDPOINT_URL_EC2": testEndpoint, "AWS_ENDPOINT_URL_RDS": testEndpoint,
	}
	for _, ctr := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		if !slices.Contains(names, ctr.Name) {
			continue
		}
		for k, v := range want {
			if got := envValue(ctr, k); got != v {
				t.Errorf("container %s: %s = %q, want %q", ctr.Name, k, got, v)
			}
		}
		if !slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == "aws-iam-token" && m.MountPath == "/var/run/secrets/eks.amazonaws.com/serviceaccount" && m.ReadOnly
		}) {
			t.Errorf("container %s does not mount aws-iam-token read-only at the token directory: %v", ctr.Name, ctr.VolumeMounts)
		}
	}
	tokenVolume(t, p)
}

func tokenVolume(t *testing.T, p *corev1.Pod) *corev1.ServiceAccountTokenProjection {
	t.Helper()
	for _, v := range p.Spec.Volumes {
		if v.Name == "aws-iam-token" && v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil {
			return v.Projected.Sources[0].ServiceAccountToken
		}
	}
	t.Fatalf("pod %s has no projected token volume aws-iam-token: %v", p.Name, p.Spec.Volumes)
	return nil
}

// expectUntouched: no variable, mount or volume of IRSA anywhere in the pod.
func expectUntouched(t *testing.T, p *corev1.Pod) {
	t.Helper()
	for _, ctr := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		for _, e := range ctr.Env {
			if strings.HasPrefix(e.Name, "AWS_") {
				t.Errorf("pod %s/%s container %s has %s", p.Namespace, p.Name, ctr.Name, e.Name)
			}
		}
		if len(ctr.VolumeMounts) != 0 {
			t.Errorf("pod %s/%s container %s has mounts %v", p.Namespace, p.Name, ctr.Name, ctr.VolumeMounts)
		}
	}
	if len(p.Spec.Volumes) != 0 {
		t.Errorf("pod %s/%s has volumes %v", p.Namespace, p.Name, p.Spec.Volumes)
	}
}

func hasEnv(c corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestIdentityServiceAccountFallback: a ServiceAccount the cache does not have yet (created an
// instant before its pod) is read from the apiserver, so its pod gets the role.
func TestIdentityServiceAccountFallback(t *testing.T) {
	scheme := testenv.NewScheme()
	empty := fake.NewClientBuilder().WithScheme(scheme).Build()
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(roleSA("shop", "rds-db-access")).Build()
	p := controllertest.Pod("shop", "api", "rds-db-access")
	if err := pod.NewIdentityDefaulter(empty, api, podidentity.Options{}).Default(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if got := envValue(p.Spec.Containers[0], podidentity.EnvRoleARN); got != testRole {
		t.Fatalf("AWS_ROLE_ARN = %q, want the role of the ServiceAccount only the apiserver has", got)
	}
	// Neither knows it: no role, no error (the apiserver's ServiceAccount admission plugin
	// rejects such pods before webhooks on a real cluster).
	p = controllertest.Pod("shop", "api", "nobody")
	if err := pod.NewIdentityDefaulter(empty, empty, podidentity.Options{}).Default(t.Context(), p); err != nil || len(p.Spec.Containers[0].Env) != 0 {
		t.Fatalf("pod of a missing ServiceAccount: err %v, env %v", err, p.Spec.Containers[0].Env)
	}
}
