package explain

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/internal/podidentity"
)

const (
	role      = "arn:aws:iam::111122223333:role/rds-db-access"
	otherRole = "arn:aws:iam::111122223333:role/other"
	tokenFile = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
)

// withRole is allocated with the seed ServiceAccount annotated before the pod was created,
// and the pod given the role by the webhook.
func withRole(r *Report) *Report {
	id := &r.Identity
	id.RoleARN = role
	id.Want = podidentity.Config{RoleARN: role, Audience: "sts.amazonaws.com", STSRegionalEndpoints: true, TokenExpiration: 86400}
	id.RoleManager, id.RoleManagerTime = "kubectl-client-side-apply", r.Pod.Created.Add(-time.Minute)
	id.Volume = &TokenVolume{Projected: true, Audience: "sts.amazonaws.com", ExpirationSeconds: 86400}
	id.Containers = []IdentityContainer{given("app")}
	return r
}

func given(name string) IdentityContainer {
	return IdentityContainer{Name: name, RoleSet: true, RoleARN: role, TokenFile: tokenFile, Mounted: true}
}

// notInjected is withRole before the webhook gave anything.
func notInjected(r *Report) *Report {
	r.Identity.Volume, r.Identity.Containers = nil, []IdentityContainer{{Name: "app"}}
	return r
}

type fakeAuthorizer struct {
	d   RDSAnswer
	err error
	got string // the role asked about
	// trust answers MayAssume (nil: allowed), trustErr fails it; gotID is what it was asked.
	trust    *TrustAnswer
	trustErr error
	gotID    WebIdentity
}

func (f *fakeAuthorizer) MayConnect(_ context.Context, roleARN string, _ RDSTarget) (RDSAnswer, error) {
	f.got = roleARN
	return f.d, f.err
}

func (f *fakeAuthorizer) MayAssume(_ context.Context, _ string, id WebIdentity) (TrustAnswer, error) {
	f.gotID = id
	if f.trust == nil {
		return TrustAnswer{Provider: testProvider, Allowed: true, Reason: "allowed by statement 1 of the trust policy"}, f.trustErr
	}
	return *f.trust, f.trustErr
}

const (
	testIssuer   = "https://oidc.example/cluster"
	testProvider = "arn:aws:iam::111122223333:oidc-provider/oidc.example/cluster"
)

func withRDS(r *Report, f *fakeAuthorizer) *Report {
	r.CheckRDS(context.Background(), f, RDSTarget{InstanceID: "podsg-demo-postgres", User: "app"}, testIssuer, nil)
	return r
}

func TestIdentityFindings(t *testing.T) {
	has := want{false, "The pod has IAM role " + role + " (ServiceAccount rds-db-access): container app assumes it with sts:AssumeRoleWithWebIdentity, " +
		`with a projected token for audience "sts.amazonaws.com".`}
	missed := want{true, "ServiceAccount rds-db-access names IAM role " + role + ", but the pod has no role: the pod identity webhook gives it to pods created while the annotation is in place"}
	resource := "arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABC/app"
	tests := map[string]struct {
		report *Report
		want   []want
	}{
		"given":                 {withRole(allocated()), []want{has}},
		"no role anywhere":      {allocated(), nil},
		"given to init and app": {edit(withRole(allocated()), func(r *Report) { r.Identity.Containers = append(r.Identity.Containers, given("init")) }), []want{{false, "containers app, init assume it"}}},
		"annotated after the pod was created": {edit(notInjected(withRole(allocated())), func(r *Report) {
			r.Identity.RoleManager, r.Identity.RoleManagerTime = "kubectl-annotate", r.Pod.Created.Add(time.Minute)
		}), []want{missed, {true, "Likely cause: the role annotation was written after the pod was created: kubectl-annotate, which owns it, " +
			"last changed ServiceAccount rds-db-access at 11:01:00, the pod was created at 11:00:00."}}},
		"missed, no visible cause": {notInjected(withRole(allocated())), []want{missed,
			{true, "Likely cause: the annotation was added after the pod was created, or so shortly before that the webhook had not seen it yet."}}},
		"missed, webhook not registered": {edit(notInjected(withRole(allocated())), func(r *Report) { r.Identity.Webhook = Webhook{} }), []want{missed,
			{true, "Likely cause: no pod identity webhook is registered (podsg's path /mutate-v1-pod-identity, or AWS's)"}}},
		"missed, webhook registered later": {edit(notInjected(withRole(allocated())), func(r *Report) { r.Identity.Webhook.Created = r.Pod.Created.Add(time.Second) }),
			[]want{missed, {true, "Likely cause: the webhook podsg-mutating-webhook/mpodidentity.podsg.io was registered after the pod was created."}}},
		"missed, namespace excluded": {edit(notInjected(withRole(allocated())), func(r *Report) { r.Identity.Webhook.NamespaceExcluded = true }),
			[]want{missed, {true, "Likely cause: namespace shop is excluded by the webhook's namespaceSelector"}}},
		"missed, skip label": {edit(notInjected(withRole(allocated())), func(r *Report) {
			r.Identity.SkipLabel, r.Identity.Webhook.ObjectExcluded = true, true
		}), []want{missed, {true, "Likely cause: the pod is labelled eks.amazonaws.com/skip-pod-identity-webhook, which keeps the webhook away."}}},
		"missed, ServiceAccount created after the pod": {edit(notInjected(withRole(allocated())), func(r *Report) {
			r.Pod.ServiceAccountCreated = r.Pod.Created.Add(time.Second)
		}), []want{missed, {true, "Likely cause: ServiceAccount rds-db-access was created after the pod."}}},
		"a container's own role": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers[0].RoleARN = otherRole
		}), []want{{true, "Container app has AWS_ROLE_ARN " + otherRole + ", not ServiceAccount rds-db-access's " + role + ": either it sets its own"}}},
		"a container's role without a token file": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers[0].TokenFile, r.Identity.Containers[0].Mounted = "", false
		}), []want{{true, "Container app sets AWS_ROLE_ARN but no AWS_WEB_IDENTITY_TOKEN_FILE (the webhook adds neither to a container that sets one)"}}},
		"a container's token file without a role": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers[0].RoleSet, r.Identity.Containers[0].RoleARN = false, ""
		}), []want{{true, "Container app sets AWS_WEB_IDENTITY_TOKEN_FILE but no AWS_ROLE_ARN"}}},
		"a container's own token file": {edit(withRole(allocated()), func(r *Report) { r.Identity.Containers[0].TokenFile = "/own/token" }),
			[]want{{false, "Container app reads its token from /own/token, its own choice"}}},
		"not mounted": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers = append(r.Identity.Containers, given("late"))
			r.Identity.Containers[1].Mounted = false
		}), []want{has, {true, "Container late does not mount volume aws-iam-token at /var/run/secrets/eks.amazonaws.com/serviceaccount: its token file " + tokenFile + " does not exist."}}},
		"a container added after the webhook": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers = append(r.Identity.Containers, IdentityContainer{Name: "late"})
		}), []want{has, {true, "Container late has no role although it is not skipped: it was added to the pod after the webhook ran."}}},
		"a skipped container": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers = append(r.Identity.Containers, IdentityContainer{Name: "sidecar", Skipped: true})
		}), []want{has, {false, "Container sidecar, named in eks.amazonaws.com/skip-containers, has no role: AWS SDKs in it fall back to the node's instance profile"}}},
		"every container skipped": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.Containers = []IdentityContainer{{Name: "app", Skipped: true}}
		}), []want{{false, "ServiceAccount rds-db-access names IAM role " + role + ", but every container is named in eks.amazonaws.com/skip-containers: none has it."}}},
		"no token volume": {edit(withRole(allocated()), func(r *Report) { r.Identity.Volume = nil }),
			[]want{{false, "with the token at " + tokenFile}, {true, "The pod has no volume aws-iam-token: its containers' token file does not exist."}}},
		"the pod's own volume of that name": {edit(withRole(allocated()), func(r *Report) { r.Identity.Volume = &TokenVolume{} }),
			[]want{{false, "container app assumes it with sts:AssumeRoleWithWebIdentity, with the token at " + tokenFile + "."},
				{true, "Volume aws-iam-token is the pod's own, not a projected ServiceAccount token"}}},
		"audience changed since": {edit(withRole(allocated()), func(r *Report) { r.Identity.Want.Audience = "rds.example" }),
			[]want{has, {true, `The pod's token is for audience "sts.amazonaws.com", but ServiceAccount rds-db-access asks for "rds.example" now`}}},
		"annotation removed since": {edit(withRole(allocated()), func(r *Report) { r.Identity.RoleARN, r.Identity.Want = "", podidentity.Config{} }),
			[]want{{true, "Container app has IAM role " + role + ", given when the pod was created, but ServiceAccount rds-db-access names no role any more " +
				"(eks.amazonaws.com/role-arn removed): recreated, the pod would have none."}}},
		"own role, no annotation": {edit(allocated(), func(r *Report) {
			r.Identity.Containers[0] = IdentityContainer{Name: "app", RoleSet: true, RoleARN: otherRole}
		}), []want{{false, "Container app sets its own AWS_ROLE_ARN " + otherRole + "; ServiceAccount rds-db-access names no role."}}},
		"not a role ARN": {edit(withRole(allocated()), func(r *Report) {
			r.Identity.RoleARN, r.Identity.Containers[0].RoleARN = "rds-db-access", "rds-db-access"
		}), []want{{false, "The pod has IAM role rds-db-access"}, {true, `eks.amazonaws.com/role-arn "rds-db-access" is not an IAM role ARN`}}},
		"rds-db:connect allowed": {withRDS(withRole(allocated()), &fakeAuthorizer{d: RDSAnswer{ResourceID: "db-ABC", IAMAuth: true,
			Users: []RDSDecision{{User: "app", Resource: resource, Allowed: true, Reason: "allowed by inline policy connect"}, {User: "report", Allowed: true}}}}),
			[]want{has, {false, "Role " + role + " may rds-db:connect to podsg-demo-postgres (DbiResourceId db-ABC) as app, report."}}},
		"rds-db:connect denied": {withRDS(withRole(allocated()), &fakeAuthorizer{d: RDSAnswer{ResourceID: "db-ABC", IAMAuth: true,
			Users: []RDSDecision{{User: "app", Resource: resource, Reason: "no statement allows it"}}}}),
			[]want{has, {true, "Role " + role + " may not rds-db:connect to podsg-demo-postgres as app (" + resource + "): no statement allows it. " +
				`The database answers PAM authentication failed for user "app".`}}},
		"rds-db:connect without IAM authentication": {withRDS(withRole(allocated()), &fakeAuthorizer{d: RDSAnswer{ResourceID: "db-ABC",
			Users: []RDSDecision{{User: "app", Resource: resource, Allowed: true}}}}),
			[]want{has, {true, "DB instance podsg-demo-postgres does not have IAM database authentication enabled"}, {false, "may rds-db:connect"}}},
		"rds-db:connect unknown": {withRDS(withRole(allocated()), &fakeAuthorizer{err: errors.New("no such DB instance")}),
			[]want{has, {true, "could not be checked: no such DB instance."}}},
		"trust policy names another ServiceAccount": {withRDS(withRole(allocated()), &fakeAuthorizer{
			d:     RDSAnswer{ResourceID: "db-ABC", IAMAuth: true, Users: []RDSDecision{{User: "app", Resource: resource, Allowed: true}}},
			trust: &TrustAnswer{Provider: testProvider, Reason: "no statement allows it (implicit deny): STS answers AccessDenied"}}),
			[]want{has, {true, "Role " + role + " does not let the pod's token assume it (system:serviceaccount:shop:rds-db-access, sts.amazonaws.com): " +
				"no statement allows it (implicit deny): STS answers AccessDenied. The pod never gets the role's credentials, so it never reaches " +
				"podsg-demo-postgres with this role."}, {false, "may rds-db:connect to podsg-demo-postgres"}}},
		"trust denied, rds-db:connect unknown": {withRDS(withRole(allocated()), &fakeAuthorizer{err: errors.New("no such DB instance"),
			trust: &TrustAnswer{Reason: "no OIDC provider is registered for the cluster's issuer " + testIssuer + ": STS answers InvalidIdentityToken"}}),
			[]want{has, {true, "no OIDC provider is registered"}, {true, "could not be checked: no such DB instance."}}},
		"rds-db:connect without a role": {withRDS(notInjected(withRole(allocated())), &fakeAuthorizer{}),
			[]want{missed, {true, "Likely cause"}, {true, "The pod has no IAM role, so it cannot authenticate to podsg-demo-postgres with IAM"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := identityFindings(tc.report)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), findings(got))
			}
			for i, w := range tc.want {
				if got[i].Problem != w.problem || !strings.Contains(got[i].Text, w.text) {
					t.Errorf("finding %d = %+v, want problem=%v containing %q", i, got[i], w.problem, w.text)
				}
			}
		})
	}
}

// TestCheckRDS: the role asked about is the one the pod's containers use, not the
// ServiceAccount's; a pod without one is not asked about.
func TestCheckRDS(t *testing.T) {
	f := &fakeAuthorizer{}
	r := withRDS(edit(withRole(allocated()), func(r *Report) { r.Identity.RoleARN = otherRole }), f)
	if f.got != role || r.Identity.RDS.RoleARN != role {
		t.Fatalf("asked about %q (recorded %q), want the pod's %s", f.got, r.Identity.RDS.RoleARN, role)
	}
	want := WebIdentity{Issuer: testIssuer, Subject: "system:serviceaccount:shop:rds-db-access", Audience: "sts.amazonaws.com"}
	if f.gotID != want || r.Identity.RDS.Identity != want || r.Identity.RDS.Trust == nil || !r.Identity.RDS.Trust.Allowed {
		t.Fatalf("trust asked about %+v (recorded %+v, answer %+v), want %+v", f.gotID, r.Identity.RDS.Identity, r.Identity.RDS.Trust, want)
	}
	// The token's audience is the pod's volume's, whatever the ServiceAccount asks for now.
	f = &fakeAuthorizer{}
	withRDS(edit(withRole(allocated()), func(r *Report) { r.Identity.Want.Audience = "rds.example" }), f)
	if f.gotID.Audience != "sts.amazonaws.com" {
		t.Fatalf("audience asked about: %q, want the pod's token's", f.gotID.Audience)
	}
	f = &fakeAuthorizer{}
	if r := withRDS(notInjected(withRole(allocated())), f); f.got != "" || f.gotID != (WebIdentity{}) || !r.Identity.RDS.NoRole {
		t.Fatalf("a pod without a role: asked about %q and %+v, NoRole %v", f.got, f.gotID, r.Identity.RDS.NoRole)
	}
	// Without the issuer there is nothing to ask STS's question with.
	f = &fakeAuthorizer{}
	r = withRole(allocated())
	r.CheckRDS(t.Context(), f, RDSTarget{InstanceID: "podsg-demo-postgres"}, "", errors.New("forbidden"))
	if a := r.Identity.RDS; f.gotID != (WebIdentity{}) || a.Trust != nil || a.TrustErr != "the cluster's service-account issuer could not be read: forbidden" || f.got != role {
		t.Fatalf("issuer unknown: asked %+v, trust %+v, error %q; rds-db:connect asked about %q", f.gotID, a.Trust, a.TrustErr, f.got)
	}
}

func TestRenderIdentity(t *testing.T) {
	r := withRDS(edit(withRole(allocated()), func(r *Report) {
		r.Identity.Containers = append([]IdentityContainer{{Name: "migrate", Init: true, Skipped: true}}, r.Identity.Containers...)
	}), &fakeAuthorizer{d: RDSAnswer{ResourceID: "db-ABC", IAMAuth: true, Evaluator: "the role's policies", Users: []RDSDecision{
		{User: "app", Resource: "arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABC/app", Reason: "no statement allows it"},
		{User: "report", Resource: "arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABC/report", Allowed: true, Reason: "allowed by statement 1 of inline policy connect"},
	}}})
	var b strings.Builder
	renderIdentity(&b, r)
	want := `
IAM role (IRSA, ServiceAccount rds-db-access)
  role:             arn:aws:iam::111122223333:role/rds-db-access (eks.amazonaws.com/role-arn; owned by kubectl-client-side-apply, which last changed the ServiceAccount 61m ago)
  asks for:         a token for audience "sts.amazonaws.com", 86400 s; AWS_STS_REGIONAL_ENDPOINTS=regional
  webhook:          podsg-mutating-webhook/mpodidentity.podsg.io, namespaceSelector kubernetes.io/metadata.name notin (kube-system,podsg-system), objectSelector !eks.amazonaws.com/skip-pod-identity-webhook: sees pods of namespace shop
  token volume:     aws-iam-token: projected ServiceAccount token, audience "sts.amazonaws.com", 86400 s
  containers:
    migrate (init): skipped (eks.amazonaws.com/skip-containers)
    app: role arn:aws:iam::111122223333:role/rds-db-access, token file /var/run/secrets/eks.amazonaws.com/serviceaccount/token, aws-iam-token mounted
  assume role:      system:serviceaccount:shop:rds-db-access (audience "sts.amazonaws.com"): ALLOWED by STS (allowed by statement 1 of the trust policy)
  database:         podsg-demo-postgres (DbiResourceId db-ABC, IAM database authentication enabled)
  rds-db:connect:   as app: DENIED on arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABC/app (no statement allows it)
                    as report: ALLOWED on arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABC/report (allowed by statement 1 of inline policy connect)
  evaluated from:   the role's policies
`
	if got := b.String(); got != want {
		t.Errorf("renderIdentity:\n%s\nwant:\n%s", got, want)
	}
}

// TestIdentityFacts reads a pod the webhook mutated (podidentity.Apply) and its
// ServiceAccount, whose managedFields say who wrote the role annotation and when.
func TestIdentityFacts(t *testing.T) {
	annotated, labelled := metav1.NewTime(now.Add(-time.Hour)), metav1.NewTime(now)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rds-db-access",
		Annotations: map[string]string{podidentity.AnnotationRoleARN: role, podidentity.AnnotationAudience: "rds.example"},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl-annotate", Operation: metav1.ManagedFieldsOperationUpdate, Time: &annotated, FieldsType: "FieldsV1",
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{".":{},"f:eks.amazonaws.com/role-arn":{}}}}`)},
			{Manager: "kubectl-label", Operation: metav1.ManagedFieldsOperationUpdate, Time: &labelled, FieldsType: "FieldsV1",
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{".":{},"f:role":{}}}}`)},
		}}}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api",
		Annotations: map[string]string{podidentity.AnnotationSkipContainers: "sidecar"}},
		Spec: corev1.PodSpec{ServiceAccountName: "rds-db-access", NodeSelector: map[string]string{"kubernetes.io/os": "windows"},
			InitContainers: []corev1.Container{{Name: "migrate"}}, Containers: []corev1.Container{{Name: "app"}, {Name: "sidecar"}}}}
	podidentity.Apply(p, sa, podidentity.Options{})

	got := identityFacts(p, sa)
	winToken := `C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token`
	want := Identity{RoleARN: role, Want: podidentity.Config{RoleARN: role, Audience: "rds.example", STSRegionalEndpoints: true, TokenExpiration: 86400},
		RoleManager: "kubectl-annotate", RoleManagerTime: annotated.Time, TokenFile: winToken,
		Volume: &TokenVolume{Projected: true, Audience: "rds.example", ExpirationSeconds: 86400},
		Containers: []IdentityContainer{
			{Name: "migrate", Init: true, RoleSet: true, RoleARN: role, TokenFile: winToken, Mounted: true},
			{Name: "app", RoleSet: true, RoleARN: role, TokenFile: winToken, Mounted: true},
			{Name: "sidecar", Skipped: true},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("identityFacts:\n%+v\nwant\n%+v", got, want)
	}
	if f := identityFindings(&Report{Pod: Pod{ServiceAccount: "rds-db-access"}, Identity: got}); len(f) != 2 || f[0].Problem || f[1].Problem {
		t.Fatalf("a pod the webhook mutated: findings\n%s", findings(f))
	}
}
