package podidentity

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	role     = "arn:aws:iam::111122223333:role/rds-db-access"
	region   = "us-west-2"
	endpoint = "http://169.254.169.254:8450"
	linuxTok = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
)

// env builds a variable list from name=value pairs.
func env(pairs ...string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		out = append(out, corev1.EnvVar{Name: k, Value: v})
	}
	return out
}

// injected is what a container gets with the default settings and a region, after its own.
func injected(own ...string) []string {
	return append(own, "AWS_STS_REGIONAL_ENDPOINTS=regional", "AWS_DEFAULT_REGION="+region, "AWS_REGION="+region,
		"AWS_ROLE_ARN="+role, "AWS_WEB_IDENTITY_TOKEN_FILE="+linuxTok)
}

var mount = corev1.VolumeMount{Name: "aws-iam-token", ReadOnly: true, MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"}

func volume(audience string, seconds int64) corev1.Volume {
	return corev1.Volume{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: audience, ExpirationSeconds: &seconds, Path: "token"}}}}}}
}

func ctr(name string, envs []string, mounts ...corev1.VolumeMount) corev1.Container {
	return corev1.Container{Name: name, Image: "app", Env: env(envs...), VolumeMounts: mounts}
}

func newPod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
		Spec: corev1.PodSpec{ServiceAccountName: "rds-db-access", Containers: containers}}
}

func sa(annotations ...string) *corev1.ServiceAccount {
	a := map[string]string{}
	for _, p := range annotations {
		k, v, _ := strings.Cut(p, "=")
		a[k] = v
	}
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rds-db-access", Annotations: a}}
}

// mutated is pod after the webhook: vol first among the volumes.
func mutated(pod *corev1.Pod, vol corev1.Volume) *corev1.Pod {
	pod.Spec.Volumes = append([]corev1.Volume{vol}, pod.Spec.Volumes...)
	return pod
}

func edit(p *corev1.Pod, f func(*corev1.Pod)) *corev1.Pod {
	f(p)
	return p
}

func TestApply(t *testing.T) {
	withRole := "eks.amazonaws.com/role-arn=" + role
	defaults := Options{Region: region}
	plain := func() *corev1.Pod { return newPod(ctr("app", nil)) }
	tests := map[string]struct {
		pod  *corev1.Pod
		sa   *corev1.ServiceAccount
		opts Options
		// want nil: the pod is unchanged.
		want *corev1.Pod
	}{
		"role: every variable, the mount and the volume": {plain(), sa(withRole), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400))},
		"no region configured: no region variables": {plain(), sa(withRole), Options{},
			mutated(newPod(ctr("app", []string{"AWS_STS_REGIONAL_ENDPOINTS=regional", "AWS_ROLE_ARN=" + role, "AWS_WEB_IDENTITY_TOKEN_FILE=" + linuxTok}, mount)),
				volume("sts.amazonaws.com", 86400))},
		"no role annotation: untouched":    {plain(), sa(), defaults, nil},
		"empty role annotation: untouched": {plain(), sa("eks.amazonaws.com/role-arn="), defaults, nil},
		"no ServiceAccount: untouched":     {plain(), nil, defaults, nil},
		"pod labelled to skip the webhook: untouched": {edit(plain(), func(p *corev1.Pod) {
			p.Labels = map[string]string{"eks.amazonaws.com/skip-pod-identity-webhook": ""}
		}), sa(withRole), defaults, nil},
		"audience annotation": {plain(), sa(withRole, "eks.amazonaws.com/audience=rds.example"), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("rds.example", 86400))},
		"sts-regional-endpoints false: no STS variable": {plain(), sa(withRole, "eks.amazonaws.com/sts-regional-endpoints=false"), defaults,
			mutated(newPod(ctr("app", injected()[1:], mount)), volume("sts.amazonaws.com", 86400))},
		"sts-regional-endpoints not a boolean: the default": {plain(), sa(withRole, "eks.amazonaws.com/sts-regional-endpoints=maybe"), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400))},
		"token expiration on the ServiceAccount": {plain(), sa(withRole, "eks.amazonaws.com/token-expiration=3600"), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 3600))},
		"token expiration below the minimum: 600": {plain(), sa(withRole, "eks.amazonaws.com/token-expiration=100"), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 600))},
		"token expiration not a number: the default": {plain(), sa(withRole, "eks.amazonaws.com/token-expiration=1d"), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400))},
		"above a day is kept: the apiserver caps what it issues": {plain(), sa(withRole, "eks.amazonaws.com/token-expiration=172800"), defaults,
			mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 172800))},
		"the pod's token expiration overrides the ServiceAccount's": {
			edit(plain(), func(p *corev1.Pod) { p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "7200"} }),
			sa(withRole, "eks.amazonaws.com/token-expiration=3600"), defaults,
			edit(mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 7200)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "7200"}
			})},
		"the pod's token expiration 0: 600": {
			edit(plain(), func(p *corev1.Pod) { p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "0"} }),
			sa(withRole), defaults,
			edit(mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 600)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "0"}
			})},
		"the pod's token expiration not a number: the ServiceAccount's": {
			edit(plain(), func(p *corev1.Pod) { p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "soon"} }),
			sa(withRole, "eks.amazonaws.com/token-expiration=3600"), defaults,
			edit(mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 3600)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/token-expiration": "soon"}
			})},
		"init containers and sidecars too": {
			edit(plain(), func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{ctr("init", nil), ctr("sidecar", nil)}
				p.Spec.InitContainers[1].RestartPolicy = &always
			}), sa(withRole), defaults,
			edit(mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) {
				always := corev1.ContainerRestartPolicyAlways
				p.Spec.InitContainers = []corev1.Container{ctr("init", injected(), mount), ctr("sidecar", injected(), mount)}
				p.Spec.InitContainers[1].RestartPolicy = &always
			})},
		"skip-containers: the named ones are left alone, the volume still added": {
			edit(newPod(ctr("sidecar", nil), ctr("app", nil)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "init-first,sidecar"}
				p.Spec.InitContainers = []corev1.Container{ctr("init-first", nil)}
			}), sa(withRole), defaults,
			edit(mutated(newPod(ctr("sidecar", nil), ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "init-first,sidecar"}
				p.Spec.InitContainers = []corev1.Container{ctr("init-first", nil)}
			})},
		"skip-containers names are not trimmed, as AWS's": {
			edit(newPod(ctr("a", nil), ctr("b", nil)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "a, b"}
			}), sa(withRole), defaults,
			edit(mutated(newPod(ctr("a", nil), ctr("b", injected(), mount)), volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "a, b"}
			})},
		"skip-containers that is not CSV skips nothing": {
			edit(plain(), func(p *corev1.Pod) { p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": `"app`} }),
			sa(withRole), defaults,
			edit(mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) {
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": `"app`}
			})},
		"a container's own AWS_ROLE_ARN: no identity variables, the rest added": {
			newPod(ctr("app", []string{"AWS_ROLE_ARN=arn:aws:iam::111122223333:role/own"})), sa(withRole), defaults,
			mutated(newPod(ctr("app", []string{"AWS_ROLE_ARN=arn:aws:iam::111122223333:role/own", "AWS_STS_REGIONAL_ENDPOINTS=regional",
				"AWS_DEFAULT_REGION=" + region, "AWS_REGION=" + region}, mount)), volume("sts.amazonaws.com", 86400))},
		"a container's own token file: no identity variables": {
			newPod(ctr("app", []string{"AWS_WEB_IDENTITY_TOKEN_FILE=/own/token"})), sa(withRole), defaults,
			mutated(newPod(ctr("app", []string{"AWS_WEB_IDENTITY_TOKEN_FILE=/own/token", "AWS_STS_REGIONAL_ENDPOINTS=regional",
				"AWS_DEFAULT_REGION=" + region, "AWS_REGION=" + region}, mount)), volume("sts.amazonaws.com", 86400))},
		"a container with its identity, region and STS choice is left alone, even unmounted": {
			newPod(ctr("app", []string{"AWS_ROLE_ARN=own", "AWS_DEFAULT_REGION=eu-west-1", "AWS_STS_REGIONAL_ENDPOINTS=legacy"})), sa(withRole), defaults,
			mutated(newPod(ctr("app", []string{"AWS_ROLE_ARN=own", "AWS_DEFAULT_REGION=eu-west-1", "AWS_STS_REGIONAL_ENDPOINTS=legacy"})),
				volume("sts.amazonaws.com", 86400))},
		"either region variable keeps both out": {
			newPod(ctr("app", []string{"AWS_DEFAULT_REGION=eu-west-1"})), sa(withRole), defaults,
			mutated(newPod(ctr("app", []string{"AWS_DEFAULT_REGION=eu-west-1", "AWS_STS_REGIONAL_ENDPOINTS=regional",
				"AWS_ROLE_ARN=" + role, "AWS_WEB_IDENTITY_TOKEN_FILE=" + linuxTok}, mount)), volume("sts.amazonaws.com", 86400))},
		"a volume of that name is the pod's own: kept, and its mount": {
			edit(newPod(ctr("app", nil, corev1.VolumeMount{Name: "aws-iam-token", MountPath: "/own"})), func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			}), sa(withRole), defaults,
			edit(newPod(ctr("app", injected(), corev1.VolumeMount{Name: "aws-iam-token", MountPath: "/own"})), func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			})},
		"the token volume goes first among the pod's volumes": {
			edit(plain(), func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "data"}} }), sa(withRole), defaults,
			edit(newPod(ctr("app", injected(), mount)), func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{volume("sts.amazonaws.com", 86400), {Name: "data"}}
			})},
		"windows by node selector: a Windows token path": {
			edit(plain(), func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"} }), sa(withRole), defaults,
			edit(mutated(newPod(ctr("app", append(injected()[:4], `AWS_WEB_IDENTITY_TOKEN_FILE=C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token`), mount)),
				volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"} })},
		"windows by spec.os: a Windows token path": {
			edit(plain(), func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} }), sa(withRole), defaults,
			edit(mutated(newPod(ctr("app", append(injected()[:4], `AWS_WEB_IDENTITY_TOKEN_FILE=C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token`), mount)),
				volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} })},
		"host network pods get the role too": {
			edit(plain(), func(p *corev1.Pod) { p.Spec.HostNetwork = true }), sa(withRole), defaults,
			edit(mutated(newPod(ctr("app", injected(), mount)), volume("sts.amazonaws.com", 86400)), func(p *corev1.Pod) { p.Spec.HostNetwork = true })},
		"local VPC: the endpoint of every service it serves": {plain(), sa(withRole), Options{Region: region, LocalVPCEndpoint: endpoint},
			mutated(newPod(ctr("app", append(injected(), "AWS_ENDPOINT_URL_EC2="+endpoint, "AWS_ENDPOINT_URL_IAM="+endpoint,
				"AWS_ENDPOINT_URL_RDS="+endpoint, "AWS_ENDPOINT_URL_STS="+endpoint), mount)), volume("sts.amazonaws.com", 86400))},
		"local VPC: a container's own endpoint for one service stays": {
			newPod(ctr("app", []string{"AWS_ENDPOINT_URL_STS=http://sts.local"})), sa(withRole), Options{Region: region, LocalVPCEndpoint: endpoint},
			mutated(newPod(ctr("app", append(injected("AWS_ENDPOINT_URL_STS=http://sts.local"),
				"AWS_ENDPOINT_URL_EC2="+endpoint, "AWS_ENDPOINT_URL_IAM="+endpoint, "AWS_ENDPOINT_URL_RDS="+endpoint), mount)), volume("sts.amazonaws.com", 86400))},
		"local VPC: a container's own endpoint for every service keeps them all out": {
			newPod(ctr("app", []string{"AWS_ENDPOINT_URL=http://aws.local"})), sa(withRole), Options{Region: region, LocalVPCEndpoint: endpoint},
			mutated(newPod(ctr("app", injected("AWS_ENDPOINT_URL=http://aws.local"), mount)), volume("sts.amazonaws.com", 86400))},
		"local VPC: each service's own hostname": {plain(), sa(withRole), Options{Region: region, LocalVPCEndpoint: "http://{service}." + region + ".amazonaws.com"},
			mutated(newPod(ctr("app", append(injected(), "AWS_ENDPOINT_URL_EC2=http://ec2."+region+".amazonaws.com",
				"AWS_ENDPOINT_URL_IAM=http://iam."+region+".amazonaws.com", "AWS_ENDPOINT_URL_RDS=http://rds."+region+".amazonaws.com",
				"AWS_ENDPOINT_URL_STS=http://sts."+region+".amazonaws.com"), mount)), volume("sts.amazonaws.com", 86400))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.pod.DeepCopy()
			res := Apply(got, tc.sa, tc.opts)
			want := tc.want
			if want == nil {
				want = tc.pod
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pod after Apply:\n%s\nwant:\n%s", dump(t, got), dump(t, want))
			}
			if res.Changed != (tc.want != nil) {
				t.Errorf("Changed = %v, want %v (skipped: %q)", res.Changed, tc.want != nil, res.Skipped)
			}
			if (res.Skipped != "") != (tc.want == nil) {
				t.Errorf("Skipped = %q with Changed = %v", res.Skipped, res.Changed)
			}
			// Idempotent: a pod the webhook mutated is not changed again (reinvocation, or
			// AWS's webhook after podsg's on EKS).
			again := got.DeepCopy()
			if res := Apply(again, tc.sa, tc.opts); res.Changed || !reflect.DeepEqual(again, got) {
				t.Fatalf("a second Apply changed the pod:\n%s", dump(t, again))
			}
		})
	}
}

func dump(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	b, err := json.MarshalIndent(p.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestForServiceAccount(t *testing.T) {
	cfg, ok := ForServiceAccount(sa("eks.amazonaws.com/role-arn="+role, "eks.amazonaws.com/audience=",
		"eks.amazonaws.com/sts-regional-endpoints=FALSE", "eks.amazonaws.com/token-expiration=-5"))
	want := Config{RoleARN: role, Audience: "", STSRegionalEndpoints: false, TokenExpiration: 600}
	if !ok || cfg != want {
		t.Fatalf("ForServiceAccount = %+v, %v; want %+v (an empty audience is kept, as AWS keeps it)", cfg, ok, want)
	}
}
