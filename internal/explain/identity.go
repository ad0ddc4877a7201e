package explain

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/podidentity"
)

// Identity is the pod's IAM role for service accounts (IRSA): what its ServiceAccount names
// now and what the pod got of it when it was created.
type Identity struct {
	// RoleARN is the ServiceAccount's eks.amazonaws.com/role-arn now; "" when it names none
	// (or does not exist).
	RoleARN string
	// Want is what the ServiceAccount's annotations ask for its pods; set with RoleARN.
	Want podidentity.Config
	// RoleManager is the field manager that owns the role annotation, from the ServiceAccount's
	// managedFields, and RoleManagerTime its last change to the ServiceAccount: the annotation
	// was written then or earlier. Zero when unknown.
	RoleManager     string
	RoleManagerTime time.Time
	// SkipLabel: the pod carries eks.amazonaws.com/skip-pod-identity-webhook.
	SkipLabel bool
	// TokenFile is where the webhook points the pod's containers (a Windows path on Windows).
	TokenFile string
	// Volume is the pod's aws-iam-token volume; nil when it has none.
	Volume     *TokenVolume
	Containers []IdentityContainer
	// Webhook is podsg's pod identity webhook (or AWS's) as registered now.
	Webhook Webhook
	// RDS is the answer to "may this role rds-db:connect"; nil when not asked (CheckRDS).
	RDS *RDSAccess
}

// TokenVolume is the pod's aws-iam-token volume.
type TokenVolume struct {
	// Projected: a projected ServiceAccount token, as the webhook adds it; otherwise a volume
	// of the pod's own by that name, which the webhook kept.
	Projected         bool
	Audience          string
	ExpirationSeconds int64
}

// IdentityContainer is what one container has of the role.
type IdentityContainer struct {
	Name string
	Init bool
	// Skipped: named in the pod's eks.amazonaws.com/skip-containers.
	Skipped bool
	// RoleSet and RoleARN are its AWS_ROLE_ARN (RoleARN "" when set from a reference).
	RoleSet bool
	RoleARN string
	// TokenFile is its AWS_WEB_IDENTITY_TOKEN_FILE, "" when unset.
	TokenFile string
	// Mounted: it mounts aws-iam-token at the token directory.
	Mounted bool
}

// injected: the container has what the webhook gives, for role.
func (c IdentityContainer) injected(role, tokenFile string) bool {
	return c.RoleARN == role && c.TokenFile == tokenFile && c.Mounted
}

// identityFacts reads the pod's role from its ServiceAccount (nil when it does not exist) and
// what the pod has of it.
func identityFacts(p *corev1.Pod, sa *corev1.ServiceAccount) Identity {
	out := Identity{TokenFile: podidentity.TokenFile(p)}
	_, out.SkipLabel = p.Labels[podidentity.LabelSkipWebhook]
	if cfg, ok := podidentity.ForServiceAccount(sa); ok {
		out.RoleARN, out.Want = cfg.RoleARN, cfg
		out.RoleManager, out.RoleManagerTime = annotationManager(sa, podidentity.AnnotationRoleARN)
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == podidentity.VolumeName {
			out.Volume = tokenVolumeFacts(v)
		}
	}
	skipped := podidentity.SkippedContainers(p)
	for i, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			out.Containers = append(out.Containers, containerFacts(c, i == 0, skipped[c.Name]))
		}
	}
	return out
}

func tokenVolumeFacts(v corev1.Volume) *TokenVolume {
	out := &TokenVolume{}
	if v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil {
		t := v.Projected.Sources[0].ServiceAccountToken
		out.Projected, out.Audience = true, t.Audience
		if t.ExpirationSeconds != nil {
			out.ExpirationSeconds = *t.ExpirationSeconds
		}
	}
	return out
}

func containerFacts(c corev1.Container, init, skipped bool) IdentityContainer {
	out := IdentityContainer{Name: c.Name, Init: init, Skipped: skipped}
	for _, e := range c.Env {
		switch e.Name {
		case podidentity.EnvRoleARN:
			out.RoleSet, out.RoleARN = true, e.Value
		case podidentity.EnvTokenFile:
			out.TokenFile = e.Value
		}
	}
	for _, m := range c.VolumeMounts {
		out.Mounted = out.Mounted || (m.Name == podidentity.VolumeName && m.MountPath == podidentity.MountPath)
	}
	return out
}

// annotationManager finds which field manager owns an annotation of obj, and when that manager
// last changed obj.
func annotationManager(sa *corev1.ServiceAccount, annotation string) (string, time.Time) {
	var manager string
	var at time.Time
	for _, mf := range sa.ManagedFields {
		if mf.FieldsV1 == nil || mf.Time == nil {
			continue
		}
		var fields struct {
			Metadata struct {
				Annotations map[string]json.RawMessage `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields) != nil {
			continue
		}
		if _, ok := fields.Metadata.Annotations["f:"+annotation]; ok && mf.Time.After(at) {
			manager, at = mf.Manager, mf.Time.Time
		}
	}
	return manager, at
}

// hasAny: the pod has something of IRSA, the volume or, in a container that is not skipped,
// a variable or the mount.
func (id Identity) hasAny() bool {
	for _, c := range id.Containers {
		if !c.Skipped && (c.RoleSet || c.TokenFile != "" || c.Mounted) {
			return true
		}
	}
	return id.Volume != nil
}

// tokenAudience is the audience of the pod's token: its projected volume's, else what the
// ServiceAccount asks for now, else the webhook's default.
func (id Identity) tokenAudience() string {
	switch {
	case id.Volume != nil && id.Volume.Projected && id.Volume.Audience != "":
		return id.Volume.Audience
	case id.Want.Audience != "":
		return id.Want.Audience
	}
	return podidentity.DefaultAudience
}

// podRole is the role the pod's containers use: the first AWS_ROLE_ARN of a container that is
// not skipped, "" when none has one.
func (id Identity) podRole() string {
	for _, c := range id.Containers {
		if !c.Skipped && c.RoleARN != "" {
			return c.RoleARN
		}
	}
	return ""
}
