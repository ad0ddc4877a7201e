package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// The metabase walk-through's names (seed 002): its namespace, ServiceAccount, Deployment and
// SecurityGroupPolicy are all "metabase", as is the database user its role may connect as.
const (
	metabaseNS   = "metabase"
	metabaseName = "metabase"
	metabaseUser = "metabase"
	// metabaseRole is the walk-through's web-identity-role-${env}.
	metabaseRole = "web-identity-role-demo"
)

// MetabaseOutcome is one step of the walk-through: what was changed, and what the
// Deployment's new pod printed.
type MetabaseOutcome struct {
	// Case says which layers were in place.
	Case string
	DemoResult
}

// Metabase outcome cases, in the walk-through's order.
const (
	MetabaseBoth     = "security groups + IAM role"
	MetabaseNoPolicy = "SecurityGroupPolicy deleted"
	MetabaseNoRole   = "role annotation removed"
	metabaseRestored = "restored"
)

// DemoMetabase runs the walk-through of seed 002 ("Combining IAM Roles for Service Accounts
// with Pod level Security Groups") on the local cluster, after the seed tutorial's setup
// (demoSetup: the cluster, the groups, the database, the OIDC provider, the nodes' role): in
// namespace metabase, a ServiceAccount labelled app=metabase and annotated with a role that
// may rds-db:connect as the database user metabase, a SecurityGroupPolicy selecting it, and a
// Deployment whose pod logs in as metabase with an IAM token (pgcheck). It then shows the two
// layers failing separately, recreating the Deployment each time as the seed does: without
// the policy the pod is on its node's ENI and times out; with the policy back and without the
// annotation its SDK falls back to the node's instance role (metadata, hop limit 2), which
// may not connect: PAM authentication failed. Last it puts the policy and the annotation
// back and recreates the Deployment once more.
func DemoMetabase(ctx context.Context, o Options, out io.Writer) ([]MetabaseOutcome, error) {
	env, err := o.demoSetup(ctx, out)
	if err != nil {
		return nil, err
	}
	role, err := ensureServiceAccountRole(ctx, metabaseRole, env.provider, env.issuerHost, metabaseNS, metabaseName, env.resourceID, metabaseUser)
	if err != nil {
		return nil, err
	}
	env.step("IAM role %s: trusts %s/%s's tokens, may rds-db:connect as %s", role, metabaseNS, metabaseName, metabaseUser)
	kubectl, ns := env.kubectl, []string{"-n", metabaseNS}
	apply := func(manifest string) error {
		_, err := kubectl(ctx, manifest, "apply", "-f", "-")
		return err
	}
	sgp := metabasePolicy(env.net.ClusterSG, env.clientSG)
	// A Deployment from an earlier run goes first: a SecurityGroupPolicy applies to new pods only.
	if err := apply(`{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "` + metabaseNS + `"}}`); err != nil {
		return nil, err
	}
	if err := deleteMetabase(ctx, kubectl); err != nil {
		return nil, err
	}
	if err := apply(metabaseServiceAccount(role) + sgp); err != nil {
		return nil, err
	}
	env.step("namespace %s: ServiceAccount %s (app: metabase, eks.amazonaws.com/role-arn: %s), SecurityGroupPolicy %s [%s %s], Deployment %s (pgcheck --auth=iam as %s)",
		metabaseNS, metabaseName, role, metabaseName, env.net.ClusterSG, env.clientSG, metabaseName, metabaseUser)
	deployment := metabaseDeployment(env.host)
	run := func(c string) (MetabaseOutcome, error) {
		if err := deleteMetabase(ctx, kubectl); err != nil {
			return MetabaseOutcome{}, err
		}
		if err := apply(deployment); err != nil {
			return MetabaseOutcome{}, err
		}
		r, err := waitDeploymentLog(ctx, kubectl, metabaseNS, "app="+metabaseName)
		if err != nil {
			return MetabaseOutcome{}, fmt.Errorf("%s: %w", c, err)
		}
		env.step("%s: pod %s printed %q", c, r.Pod, r.Log)
		return MetabaseOutcome{Case: c, DemoResult: r}, nil
	}
	steps := []struct {
		c      string
		change func() error
	}{
		{MetabaseBoth, func() error { return nil }},
		// $ kubectl delete -f security-group-policy.patch.yaml; kubectl delete/apply -f deployment.patch.yaml
		{MetabaseNoPolicy, func() error {
			_, err := kubectl(ctx, "", append(ns, "delete", "securitygrouppolicy", metabaseName, "--ignore-not-found")...)
			return err
		}},
		// $ kubectl annotate sa metabase eks.amazonaws.com/role-arn-; kubectl apply -f security-group-policy.patch.yaml; …
		{MetabaseNoRole, func() error {
			if _, err := kubectl(ctx, "", append(ns, "annotate", "serviceaccount", metabaseName, "eks.amazonaws.com/role-arn-")...); err != nil {
				return err
			}
			return apply(sgp)
		}},
		// Back as it was: both layers, and a pod that connects.
		{metabaseRestored, func() error { return apply(metabaseServiceAccount(role)) }},
	}
	var outcomes []MetabaseOutcome
	for _, st := range steps {
		err := st.change()
		var r MetabaseOutcome
		if err == nil {
			r, err = run(st.c)
		}
		if err != nil {
			// Put back what the walk-through changed, as far as it goes.
			return outcomes, errors.Join(fmt.Errorf("%s: %w", st.c, err), apply(metabaseServiceAccount(role)+sgp))
		}
		if st.c != metabaseRestored {
			outcomes = append(outcomes, r)
		} else if !strings.HasPrefix(r.Log, "('PostgreSQL") {
			return outcomes, fmt.Errorf("with the policy and the role annotation back, pod %s printed %q", r.Pod, r.Log)
		}
	}
	return outcomes, nil
}

// deleteMetabase deletes the Deployment and waits until its pods are gone, so that the next
// one's pod is the only one.
func deleteMetabase(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error)) error {
	if _, err := kubectl(ctx, "", "-n", metabaseNS, "delete", "deployment", metabaseName, "--ignore-not-found", "--cascade=foreground", "--wait=true"); err != nil {
		return err
	}
	// The garbage collector may still be deleting the pods: wait for them too, or the next
	// look for the Deployment's pod could find the old one.
	_, err := kubectl(ctx, "", "-n", metabaseNS, "delete", "pods", "-l", "app="+metabaseName, "--ignore-not-found", "--wait=true")
	return err
}

// waitDeploymentLog waits for the one pod matching selector to have printed its line, and
// returns it with what podsg gave the pod.
func waitDeploymentLog(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), ns, selector string) (DemoResult, error) {
	var pod, last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		names, err := kubectl(ctx, "", "-n", ns, "get", "pods", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}")
		if f := strings.Fields(names); err != nil || len(f) != 1 {
			last = names
			return false, nil //nolint:nilerr // not created yet, or the old one still going
		}
		pod = strings.Fields(names)[0]
		log, err := kubectl(ctx, "", "-n", ns, "logs", pod)
		last = log
		return err == nil && strings.TrimSpace(log) != "", nil
	})
	if err != nil {
		events, _ := kubectl(ctx, "", "-n", ns, "get", "events")
		return DemoResult{}, fmt.Errorf("no line from a pod of %s (last seen %q): %w\n%s", selector, last, err, events)
	}
	return podResult(ctx, kubectl, ns, pod)
}

func metabaseServiceAccount(role string) string {
	return `apiVersion: v1
kind: ServiceAccount
metadata:
  name: ` + metabaseName + `
  namespace: ` + metabaseNS + `
  labels: {app: metabase}
  annotations: {eks.amazonaws.com/role-arn: "` + role + `"}
---
`
}

func metabasePolicy(clusterSG, clientSG string) string {
	return `apiVersion: vpcresources.k8s.aws/v1beta1
kind: SecurityGroupPolicy
metadata:
  name: ` + metabaseName + `
  namespace: ` + metabaseNS + `
spec:
  serviceAccountSelector:
    matchLabels: {app: metabase}
  securityGroups:
    groupIds: [` + clientSG + `, ` + clusterSG + `]
`
}

// metabaseDeployment is the walk-through's Deployment with pgcheck in metabase's place: it
// logs in as metabase with an IAM token, prints the outcome and, like metabase, keeps
// running (--wait), so the Deployment's pod prints one line.
func metabaseDeployment(host string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + metabaseName + `
  namespace: ` + metabaseNS + `
  labels: {app: metabase}
spec:
  replicas: 1
  selector:
    matchLabels: {app: metabase}
  template:
    metadata:
      labels: {app: metabase}
    spec:
      serviceAccountName: ` + metabaseName + `
      terminationGracePeriodSeconds: 1
      containers:
      - name: metabase
        image: podsg.local/pgcheck:latest
        imagePullPolicy: IfNotPresent
        args: ["--auth=iam", "--wait"]
        env:
        - {name: HOST, value: "` + host + `"}
        - {name: DATABASE, value: "postgres"}
        - {name: USER, value: "` + metabaseUser + `"}
`
}
