package explain

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/webhook"
)

// roleARN is the shape of an IAM role ARN, as AWS's webhook checks it (and only warns).
var roleARN = regexp.MustCompile(`^arn:aws[a-z0-9-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)

const nodeRoleFallback = "AWS SDKs in it fall back to the node's instance profile through instance metadata, where the hop limit lets them reach it"

// identityFindings explain the pod's IAM role. A pod whose ServiceAccount names no role and
// that has none gets no finding: the IAM section says so, and there is nothing to act on.
func identityFindings(r *Report) []Finding {
	var out []Finding
	if r.Identity.RoleARN == "" {
		out = noRoleFindings(r)
	} else {
		out = roleFindings(r)
	}
	return append(out, rdsFindings(r)...)
}

// noRoleFindings: the ServiceAccount names no role (or does not exist), yet containers may
// have one, from an annotation since removed or of their own.
func noRoleFindings(r *Report) []Finding {
	id, sa := r.Identity, r.Pod.ServiceAccount
	var out []Finding
	for _, c := range id.Containers {
		switch {
		case c.Skipped || !c.RoleSet:
		case c.TokenFile == id.TokenFile && c.Mounted && id.Volume != nil && id.Volume.Projected:
			out = append(out, problem("Container %s has IAM role %s, given when the pod was created, but ServiceAccount %s names no role "+
				"any more (%s removed): recreated, the pod would have none.", c.Name, c.RoleARN, sa, podidentity.AnnotationRoleARN))
		default:
			out = append(out, info("Container %s sets its own %s %s; ServiceAccount %s names no role.", c.Name, podidentity.EnvRoleARN, c.RoleARN, sa))
		}
	}
	return out
}

// roleFindings: the ServiceAccount names a role; did the pod get it, container by container.
func roleFindings(r *Report) []Finding {
	id := r.Identity
	var given, skipped []string
	var out []Finding
	for _, c := range id.Containers {
		switch {
		case c.Skipped:
			skipped = append(skipped, c.Name)
		case c.injected(id.RoleARN, id.TokenFile):
			given = append(given, c.Name)
		default:
			out = append(out, containerFindings(r, c)...)
		}
	}
	var first []Finding
	switch {
	case len(given) == 0 && len(out) == 0 && len(skipped) == len(id.Containers):
		first = []Finding{info("ServiceAccount %s names IAM role %s, but every container is named in %s: none has it.",
			r.Pod.ServiceAccount, id.RoleARN, podidentity.AnnotationSkipContainers)}
	case len(given) == 0 && !id.hasAny():
		first = notGiven(r)
		out = nil // each container would repeat it
	case len(given) > 0:
		first = []Finding{info("The pod has IAM role %s (ServiceAccount %s): %s %s it with sts:AssumeRoleWithWebIdentity, %s.",
			id.RoleARN, r.Pod.ServiceAccount, containerList(given), verb(len(given), "assumes", "assume"), tokenText(id))}
	}
	if len(skipped) > 0 && len(given)+len(out) > 0 {
		first = append(first, info("%s, named in %s, %s no role: %s.", capitalize(containerList(skipped)),
			podidentity.AnnotationSkipContainers, verb(len(skipped), "has", "have"), nodeRoleFallback))
	}
	out = append(first, out...)
	if !roleARN.MatchString(id.RoleARN) {
		out = append(out, problem("%s %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME): STS rejects it.", podidentity.AnnotationRoleARN, id.RoleARN))
	}
	return append(out, volumeFindings(r, len(given) > 0)...)
}

func containerList(names []string) string {
	if len(names) == 1 {
		return "container " + names[0]
	}
	return "containers " + strings.Join(names, ", ")
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func tokenText(id Identity) string {
	if id.Volume != nil && id.Volume.Projected {
		return fmt.Sprintf("with a projected token for audience %q", id.Volume.Audience)
	}
	return "with the token at " + id.TokenFile
}

// containerFindings: a container that should have the role and does not have it as the
// webhook gives it.
func containerFindings(r *Report, c IdentityContainer) []Finding {
	id := r.Identity
	switch {
	case c.RoleSet && c.RoleARN != id.RoleARN:
		return []Finding{problem("Container %s has %s %s, not ServiceAccount %s's %s: either it sets its own (the webhook leaves a "+
			"container's own role alone) or the annotation changed after the pod was created (recreate the pod).",
			c.Name, podidentity.EnvRoleARN, orNone(c.RoleARN, "(from a reference)"), r.Pod.ServiceAccount, id.RoleARN)}
	case c.RoleSet && c.TokenFile == "":
		return []Finding{problem("Container %s sets %s but no %s (the webhook adds neither to a container that sets one): "+
			"the SDKs assume a role with web identity only with both.", c.Name, podidentity.EnvRoleARN, podidentity.EnvTokenFile)}
	case !c.RoleSet && c.TokenFile != "":
		return []Finding{problem("Container %s sets %s but no %s (the webhook adds neither to a container that sets one): "+
			"the SDKs assume a role with web identity only with both.", c.Name, podidentity.EnvTokenFile, podidentity.EnvRoleARN)}
	case !c.RoleSet:
		return []Finding{problem("Container %s has no role although it is not skipped: it was added to the pod after the webhook ran.", c.Name)}
	case c.TokenFile != id.TokenFile:
		return []Finding{info("Container %s reads its token from %s, its own choice, not the webhook's %s.", c.Name, c.TokenFile, id.TokenFile)}
	}
	return []Finding{problem("Container %s does not mount volume %s at %s: its token file %s does not exist.",
		c.Name, podidentity.VolumeName, podidentity.MountPath, c.TokenFile)}
}

// volumeFindings check the token the containers read: projected, for the audience the role's
// trust policy expects.
func volumeFindings(r *Report, used bool) []Finding {
	id := r.Identity
	switch {
	case !used:
		return nil
	case id.Volume == nil:
		return []Finding{problem("The pod has no volume %s: its containers' token file does not exist.", podidentity.VolumeName)}
	case !id.Volume.Projected:
		return []Finding{problem("Volume %s is the pod's own, not a projected ServiceAccount token (the webhook keeps a volume of that name): "+
			"STS accepts no other token.", podidentity.VolumeName)}
	case id.Volume.Audience != id.Want.Audience:
		return []Finding{problem("The pod's token is for audience %q, but ServiceAccount %s asks for %q now (%s changed after the pod was "+
			"created?): the role's trust policy checks the audience. Recreate the pod.", id.Volume.Audience, r.Pod.ServiceAccount,
			id.Want.Audience, podidentity.AnnotationAudience)}
	}
	return nil
}

// notGiven: the ServiceAccount names a role, the pod has nothing of it.
func notGiven(r *Report) []Finding {
	out := []Finding{problem("ServiceAccount %s names IAM role %s, but the pod has no role: the pod identity webhook gives it to pods "+
		"created while the annotation is in place, and %s. Recreate the pod (its owner makes a new one) once no cause below applies.",
		r.Pod.ServiceAccount, r.Identity.RoleARN, nodeRoleFallback)}
	for _, c := range identityCauses(r) {
		out = append(out, problem("Likely cause: %s.", c))
	}
	return out
}

// identityCauses lists why the webhook may have missed a pod whose ServiceAccount names a role.
func identityCauses(r *Report) []string {
	p, id, w := r.Pod, r.Identity, r.Identity.Webhook
	var out []string
	switch {
	case w.Err != "" && !w.Registered:
		out = append(out, "unknown: the pod identity webhook could not be checked ("+w.Err+")")
	case !w.Registered:
		out = append(out, fmt.Sprintf("no pod identity webhook is registered (podsg's path %s, or AWS's): podsg-controller registers it "+
			"when it starts: is it running?", webhook.IdentityPath))
	default:
		if w.Created.After(p.Created) {
			out = append(out, fmt.Sprintf("the webhook %s was registered after the pod was created", w.Name))
		}
		if w.NamespaceExcluded {
			out = append(out, fmt.Sprintf("namespace %s is excluded by the webhook's namespaceSelector (%s); podsg-controller exempts "+
				"kube-system and its own namespace, and serves only the namespaces its --identity-webhook-namespace-selector selects "+
				"when that is set", p.Namespace, w.NamespaceSelector))
		}
	}
	if id.SkipLabel {
		out = append(out, fmt.Sprintf("the pod is labelled %s, which keeps the webhook away", podidentity.LabelSkipWebhook))
	}
	switch {
	case p.ServiceAccountCreated.After(p.Created):
		out = append(out, fmt.Sprintf("ServiceAccount %s was created after the pod", p.ServiceAccount))
	case id.RoleManagerTime.After(p.Created):
		out = append(out, fmt.Sprintf("the role annotation was written after the pod was created: %s, which owns it, last changed "+
			"ServiceAccount %s at %s, the pod was created at %s", id.RoleManager, p.ServiceAccount,
			id.RoleManagerTime.UTC().Format("15:04:05"), p.Created.UTC().Format("15:04:05")))
	}
	if len(out) == 0 {
		out = append(out, "the annotation was added after the pod was created, or so shortly before that the webhook had not seen it yet")
	}
	return out
}

// rdsFindings report the answer to --db.
func rdsFindings(r *Report) []Finding {
	a := r.Identity.RDS
	switch {
	case a == nil:
		return nil
	case a.NoRole:
		return []Finding{problem("The pod has no IAM role, so it cannot authenticate to %s with IAM: an auth token signed with other "+
			"credentials gets PAM authentication failed.", a.Target.InstanceID)}
	}
	var out []Finding
	if t := a.Trust; t != nil && !t.Allowed {
		// As on AWS: the SDK's web identity provider fails, so the pod never signs an auth
		// token with this role; the database sees nothing from it, or another identity's
		// token if the application falls back to other credentials.
		out = append(out, problem("Role %s does not let the pod's token assume it (%s, %s): %s. The pod never gets the role's "+
			"credentials, so it never reaches %s with this role.", a.RoleARN, a.Identity.Subject, a.Identity.Audience, t.Reason, a.Target.InstanceID))
	}
	if a.Err != "" {
		return append(out, problem("Whether role %s may rds-db:connect to %s could not be checked: %s.", a.RoleARN, a.Target.InstanceID, a.Err))
	}
	if !a.Answer.IAMAuth {
		out = append(out, problem("DB instance %s does not have IAM database authentication enabled: it accepts no auth token, "+
			"whatever the role may do (ModifyDBInstance --enable-iam-database-authentication).", a.Target.InstanceID))
	}
	for _, d := range a.Answer.Users {
		if d.User == a.Target.User && !d.Allowed {
			out = append(out, problem("Role %s may not rds-db:connect to %s as %s (%s): %s. The database answers PAM authentication failed for user %q.",
				a.RoleARN, a.Target.InstanceID, d.User, d.Resource, d.Reason, d.User))
		}
	}
	switch users := a.allowedUsers(); {
	case len(users) > 0:
		out = append(out, info("Role %s may rds-db:connect to %s (DbiResourceId %s) as %s.", a.RoleARN, a.Target.InstanceID,
			a.Answer.ResourceID, strings.Join(users, ", ")))
	case a.Target.User == "":
		out = append(out, problem("Role %s may not rds-db:connect to %s (DbiResourceId %s) as any user: every auth token it signs "+
			"gets PAM authentication failed.", a.RoleARN, a.Target.InstanceID, a.Answer.ResourceID))
	}
	return out
}
