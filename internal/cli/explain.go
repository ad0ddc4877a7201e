package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/explain"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/reach"
)

func newExplain() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Explain why a pod has, or has not, the security groups of its SecurityGroupPolicies",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newExplainPod())
	return cmd
}

func newExplainPod() *cobra.Command {
	var kubeconfig, region, endpoint string
	var db explain.RDSTarget
	var useAWS bool
	cmd := &cobra.Command{
		Use:   "pod [NAMESPACE/]NAME",
		Short: "Explain a pod's security groups (admission, policies, branch ENI annotation, events, EC2) and its IAM role",
		Long: `Explain why a pod has (or does not have) the security groups of the SecurityGroupPolicies of
its namespace: whether the webhook asked a branch ENI for it at creation, which policies select
it and why (podSelector against the pod's labels, serviceAccountSelector against its
ServiceAccount's labels), the union of their groups, the controller's vpc.amazonaws.com/pod-eni
annotation and events, and, with --ec2 or --ec2-endpoint, the branch ENI as EC2 sees it (groups,
trunk association). Then its IAM role (IAM roles for service accounts): the role its
ServiceAccount's eks.amazonaws.com/role-arn names, whether the pod identity webhook gave it to
each container (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, the projected token volume) and, if
not, why. With --db, whether the pod's token may assume that role (the cluster's issuer as an
OIDC provider, the role's trust policy for the pod's ServiceAccount), whether the role may
rds-db:connect to the DB instance (RDS IAM database authentication) and as which database users
its policies name, the instance's DbiResourceId
and whether IAM authentication is enabled on it: the local VPC (--ec2-endpoint) answers; on
AWS explain says that it cannot. It only reads; nothing is changed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if db.User != "" && db.InstanceID == "" {
				return errors.New("--db-user needs --db, the DB instance to ask about")
			}
			ctx := cmd.Context()
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil)
			defaultNS, _, err := loader.Namespace()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			key, err := podKey(args[0], defaultNS)
			if err != nil {
				return err
			}
			cfg, err := loader.ClientConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			kube, err := client.New(cfg, client.Options{Scheme: policyScheme()})
			if err != nil {
				return fmt.Errorf("creating a Kubernetes client: %w", err)
			}
			var ec2 explain.EC2
			if useAWS || endpoint != "" {
				if ec2, err = ec2Client(ctx, region, endpoint); err != nil {
					return err
				}
			}
			var authz explain.RDSAuthorizer
			var iss issuer
			if db.InstanceID != "" {
				if authz, err = rdsAuthorizer(ctx, region, endpoint); err != nil {
					return err
				}
				iss.url, iss.err = clusterIssuer(ctx, cfg)
			}
			return explainPod(ctx, kube, ec2, authz, iss, key, db, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	cmd.Flags().BoolVar(&useAWS, "ec2", false, "also ask AWS's EC2 API about the pod's branch ENI (needs AWS credentials)")
	cmd.Flags().StringVar(&endpoint, "ec2-endpoint", "", "EC2 endpoint URL, e.g. the local VPC's; implies --ec2")
	cmd.Flags().StringVar(&region, "region", "us-west-2", "AWS region")
	cmd.Flags().StringVar(&db.InstanceID, "db", "", "DB instance identifier: may the pod's IAM role rds-db:connect to it, as which users (the local VPC answers)")
	cmd.Flags().StringVar(&db.User, "db-user", "", "with --db, also ask about this database user")
	return cmd
}

// issuer is the cluster's service-account issuer, or why it could not be read.
type issuer struct {
	url string
	err error
}

func explainPod(ctx context.Context, kube client.Reader, ec2 explain.EC2, authz explain.RDSAuthorizer, iss issuer, key types.NamespacedName,
	db explain.RDSTarget, out io.Writer) error {
	r, err := explain.Gather(ctx, kube, ec2, key)
	if err != nil {
		return err
	}
	if authz != nil {
		r.CheckRDS(ctx, authz, db, iss.url, iss.err)
	}
	if _, err = io.WriteString(out, explain.Render(r)); err != nil {
		return err
	}
	return writeSelectingPolicies(ctx, kube, key, out)
}

// writeSelectingPolicies lists the network policies of every layer that apply to the pod;
// a cluster whose policies cannot be read says so instead of failing the explanation.
func writeSelectingPolicies(ctx context.Context, kube client.Reader, key types.NamespacedName, out io.Writer) error {
	w := &lineWriter{out: out}
	w.printf("\nNetwork policies selecting the pod (in the order they apply):\n")
	ps, err := reach.LoadPolicies(ctx, kube)
	if err != nil {
		w.printf("  could not be read: %v\n", err)
		return w.err
	}
	for _, l := range selectingPolicies(ps, key) {
		w.printf("%s\n", l)
	}
	return w.err
}

// selectingPolicies are the lines of the explanation's network policy section: each policy
// that selects the pod, in the order the layers apply, with the findings podsg-controller
// reports on it as events (netpol.Check, the same function on the same objects: a named port
// no pod exposes, say); then the policies podsg-agent refuses that may concern the pod (the
// cluster's and the pod's namespace's: which pods a refused policy would select is unknown).
func selectingPolicies(ps *reach.Policies, key types.NamespacedName) []string {
	var pod *netpol.Pod
	for _, p := range ps.Pods {
		if p.Namespace == key.Namespace && p.Name == key.Name {
			pod = p
		}
	}
	var out []string
	sels := ps.Selecting(pod)
	switch {
	case pod == nil: // it exists (explain read it), so it has finished: netpol.PodsFromLists leaves it out
		out = append(out, "  none: the pod has finished, and no policy applies to it any more")
	case pod.HostNetwork:
		out = append(out, "  none: a host-network pod is not selected by network policies")
	case len(sels) == 0:
		out = append(out, "  none: every connection to and from it is allowed by network policy")
	}
	findings := ps.Findings()
	for _, s := range sels {
		out = append(out, selectionLines(s, findings)...)
	}
	if len(ps.NotServed) > 0 {
		out = append(out, fmt.Sprintf("  (the cluster does not serve %s)", strings.Join(ps.NotServed, ", ")))
	}
	return append(out, refusedLines(findings, key.Namespace)...)
}

// selectionLines are one selecting policy, with the directions it polices, and the findings on it.
func selectionLines(s netpol.Selection, findings []netpol.Finding) []string {
	dirs := make([]string, len(s.Directions))
	for i, d := range s.Directions {
		dirs[i] = string(d)
	}
	out := []string{fmt.Sprintf("  %s: %s (%s)", s.Layer, s.Policy, orNone(strings.Join(dirs, ", ")))}
	for _, f := range findings {
		if f.PolicyRef == s.Ref {
			out = append(out, fmt.Sprintf("    %s: %s", f.Reason, f.Message))
		}
	}
	return out
}

// refusedLines are the policies of the cluster and of the namespace that the agent refuses.
func refusedLines(findings []netpol.Finding, namespace string) []string {
	var out []string
	for _, f := range findings {
		if f.Reason == netpol.ReasonNotEnforced && (f.Namespace == "" || f.Namespace == namespace) {
			out = append(out, fmt.Sprintf("  %s: %s", f.PolicyRef, f.Message))
		}
	}
	if len(out) == 0 {
		return nil
	}
	return append([]string{"Network policies podsg-agent does not enforce, which may concern the pod (not listed above):"}, out...)
}

// podKey reads NAMESPACE/NAME, or NAME in the kubeconfig context's namespace, as kubectl does.
func podKey(arg, defaultNS string) (types.NamespacedName, error) {
	ns, name, found := strings.Cut(arg, "/")
	if !found {
		ns, name = defaultNS, arg
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("want a pod as NAMESPACE/NAME or NAME, got %q", arg)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

func explainScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1beta1.AddToScheme(s))
	return s
}
