package explain

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/podsg/podsg/internal/podidentity"
)

// renderIdentity writes the IAM role section: what the ServiceAccount names, the webhook that
// gives it, and what the pod and each of its containers have.
func renderIdentity(b *strings.Builder, r *Report) {
	id := r.Identity
	fmt.Fprintf(b, "\nIAM role (IRSA, ServiceAccount %s)\n", r.Pod.ServiceAccount)
	switch {
	case !r.Pod.ServiceAccountFound:
		field(b, "role", "none: the ServiceAccount does not exist")
	case id.RoleARN == "":
		field(b, "role", "none: the ServiceAccount has no %s annotation", podidentity.AnnotationRoleARN)
	default:
		field(b, "role", "%s (%s%s)", id.RoleARN, podidentity.AnnotationRoleARN, roleManager(r))
		sts := "global STS endpoint unless the SDK defaults to the regional one"
		if id.Want.STSRegionalEndpoints {
			sts = podidentity.EnvSTSRegionalEndpoints + "=regional"
		}
		field(b, "asks for", "a token for audience %q, %d s; %s", id.Want.Audience, id.Want.TokenExpiration, sts)
	}
	renderWebhookField(b, id.Webhook, r.Pod.Namespace, "not registered: no pod is given its ServiceAccount's role")
	if id.RoleARN == "" && !id.hasAny() && id.RDS == nil {
		return // nothing of a role anywhere
	}
	switch v := id.Volume; {
	case v == nil:
		field(b, "token volume", "none (%s)", podidentity.VolumeName)
	case !v.Projected:
		field(b, "token volume", "%s: the pod's own volume, not a projected ServiceAccount token", podidentity.VolumeName)
	default:
		field(b, "token volume", "%s: projected ServiceAccount token, audience %q, %d s", podidentity.VolumeName, v.Audience, v.ExpirationSeconds)
	}
	b.WriteString("  containers:\n")
	for _, c := range id.Containers {
		fmt.Fprintf(b, "    %s: %s\n", containerName(c), containerRole(c))
	}
	renderRDS(b, id.RDS)
}

func roleManager(r *Report) string {
	id := r.Identity
	if id.RoleManager == "" || id.RoleManagerTime.IsZero() {
		return ""
	}
	return fmt.Sprintf("; owned by %s, which last changed the ServiceAccount %s ago", id.RoleManager,
		duration.HumanDuration(r.Now.Sub(id.RoleManagerTime)))
}

func containerName(c IdentityContainer) string {
	if c.Init {
		return c.Name + " (init)"
	}
	return c.Name
}

func containerRole(c IdentityContainer) string {
	if c.Skipped {
		return "skipped (" + podidentity.AnnotationSkipContainers + ")"
	}
	var parts []string
	switch {
	case c.RoleSet && c.RoleARN == "":
		parts = append(parts, podidentity.EnvRoleARN+" from a reference")
	case c.RoleSet:
		parts = append(parts, "role "+c.RoleARN)
	default:
		parts = append(parts, "no "+podidentity.EnvRoleARN)
	}
	if c.TokenFile != "" {
		parts = append(parts, "token file "+c.TokenFile)
	}
	if c.Mounted {
		parts = append(parts, podidentity.VolumeName+" mounted")
	}
	return strings.Join(parts, ", ")
}

func renderRDS(b *strings.Builder, a *RDSAccess) {
	if a == nil {
		return
	}
	switch {
	case a.NoRole:
		field(b, "rds-db:connect", "%s: the pod has no role", a.Target.InstanceID)
		return
	case a.Err != "":
		renderTrust(b, a)
		field(b, "rds-db:connect", "%s: unknown (%s)", a.Target.InstanceID, a.Err)
		return
	}
	renderTrust(b, a)
	ans := a.Answer
	iamAuth := "IAM database authentication enabled"
	if !ans.IAMAuth {
		iamAuth = "IAM database authentication DISABLED: no token is accepted"
	}
	field(b, "database", "%s (DbiResourceId %s, %s)", a.Target.InstanceID, ans.ResourceID, iamAuth)
	if len(ans.Users) == 0 {
		field(b, "rds-db:connect", "as no user: no statement of the role's policies names a user of this database")
	}
	for i, d := range ans.Users {
		label := "" // one user a line, the field's name on the first
		if i == 0 {
			label = "rds-db:connect:"
		}
		verdict := "DENIED"
		if d.Allowed {
			verdict = "ALLOWED"
		}
		fmt.Fprintf(b, "  %-17s as %s: %s on %s (%s)\n", label, d.User, verdict, d.Resource, d.Reason)
	}
	field(b, "evaluated from", "%s", ans.Evaluator)
}

// renderTrust writes STS's answer to the pod's token for the role.
func renderTrust(b *strings.Builder, a *RDSAccess) {
	who := fmt.Sprintf("%s (audience %q)", a.Identity.Subject, a.Identity.Audience)
	switch {
	case a.TrustErr != "":
		field(b, "assume role", "%s: unknown (%s)", who, a.TrustErr)
	case a.Trust == nil:
	case a.Trust.Allowed:
		field(b, "assume role", "%s: ALLOWED by STS (%s)", who, a.Trust.Reason)
	default:
		field(b, "assume role", "%s: DENIED by STS (%s)", who, a.Trust.Reason)
	}
}
