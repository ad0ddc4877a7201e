package podidentity

import (
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/policy"
)

// Result says what Apply did to a pod.
type Result struct {
	// Changed: the pod was modified.
	Changed bool
	// Skipped says why the pod was not considered at all ("" when it was): the webhook logs it.
	Skipped string
	// Config is what the ServiceAccount asked for, when it named a role.
	Config Config
}

// Apply gives pod the role sa names, as AWS's webhook does at pod creation: the pod's ServiceAccount
// sa (nil when it does not exist) decides, the pod's annotations adjust, o adds the region and
// the local VPC's endpoints. It changes pod in place and only adds: what a container already
// has stays as it is.
func Apply(pod *corev1.Pod, sa *corev1.ServiceAccount, o Options) Result {
	if _, skip := pod.Labels[LabelSkipWebhook]; skip {
		return Result{Skipped: "the pod is labelled " + LabelSkipWebhook}
	}
	cfg, ok := ForServiceAccount(sa)
	if !ok {
		return Result{Skipped: "its ServiceAccount names no role (" + AnnotationRoleARN + ")"}
	}
	cfg.TokenExpiration = TokenExpiration(pod.Annotations[AnnotationTokenExpiration], cfg.TokenExpiration)
	res := Result{Config: cfg}
	skipped := SkippedContainers(pod)
	tokenFile := TokenFile(pod)
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if !skipped[cs[i].Name] && mutateContainer(&cs[i], cfg, o, tokenFile) {
				res.Changed = true
			}
		}
	}
	if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == VolumeName }) {
		// First, where AWS's patch puts it.
		pod.Spec.Volumes = append([]corev1.Volume{TokenVolume(cfg)}, pod.Spec.Volumes...)
		res.Changed = true
	}
	return res
}

// TokenFile is where a pod's containers find the token: on Windows nodes the same mount,
// as a Windows path. AWS's webhook recognises Windows pods by their node selector only;
// podsg also by spec.os, which can only mean Windows.
func TokenFile(pod *corev1.Pod) string {
	p := path.Join(MountPath, TokenPath)
	if policy.IsWindows(pod) {
		return "C:" + strings.ReplaceAll(p, "/", `\`)
	}
	return p
}

// TokenVolume is the projected ServiceAccount token the kubelet keeps fresh for the pod.
func TokenVolume(cfg Config) corev1.Volume {
	exp := cfg.TokenExpiration
	return corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: cfg.Audience, ExpirationSeconds: &exp, Path: TokenPath}}},
	}}}
}

// mutateContainer adds what c lacks, in the order AWS's webhook adds it, and reports whether
// it changed c. A container that sets its web identity (either variable), its region (either)
// and its STS endpoint choice is left alone, without even the mount, as AWS leaves it.
func mutateContainer(c *corev1.Container, cfg Config, o Options, tokenFile string) bool {
	has := func(names ...string) bool {
		return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return slices.Contains(names, e.Name) })
	}
	identitySet, regionSet, stsSet := has(EnvRoleARN, EnvTokenFile), has(EnvRegion, EnvDefaultRegion), has(EnvSTSRegionalEndpoints)
	if identitySet && regionSet && stsSet {
		return false
	}
	n := len(c.Env)
	if !stsSet && cfg.STSRegionalEndpoints {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvSTSRegionalEndpoints, Value: "regional"})
	}
	if !regionSet && o.Region != "" {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvDefaultRegion, Value: o.Region}, corev1.EnvVar{Name: EnvRegion, Value: o.Region})
	}
	if !identitySet {
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvRoleARN, Value: cfg.RoleARN}, corev1.EnvVar{Name: EnvTokenFile, Value: tokenFile})
	}
	// The container's own endpoint, for every service or for one, is its choice.
	if o.LocalVPCEndpoint != "" && !has(EnvEndpointURL) {
		for _, svc := range LocalVPCServices {
			if !has(EndpointEnv(svc)) {
				c.Env = append(c.Env, corev1.EnvVar{Name: EndpointEnv(svc), Value: ServiceEndpointURL(o.LocalVPCEndpoint, svc)})
			}
		}
	}
	changed := len(c.Env) != n
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == VolumeName }) {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: VolumeName, ReadOnly: true, MountPath: MountPath})
		changed = true
	}
	return changed
}
