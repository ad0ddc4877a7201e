package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/reach"
)

// exitDenied is `podsg reach`'s exit status for a flow security groups deny, so that scripts
// tell a denial (2) from a failure to decide (1).
const exitDenied = 2

// exitError is an error that asks for a specific exit status (ExitCode).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode is the process exit status the error asks for.
func (e *exitError) ExitCode() int { return e.code }

type reachOptions struct {
	region, endpoint, kubeconfig string
	noPolicies                   bool
	flow                         reach.Flow
}

func newReach() *cobra.Command {
	o := reachOptions{flow: reach.Flow{Protocol: cloud.ProtocolTCP}}
	cmd := &cobra.Command{
		Use:   "reach SRC DST",
		Short: "Explain whether security groups and network policies let SRC open a connection to DST",
		Long: `Decide whether SRC may open a connection (or send the first packet of a UDP or ICMP flow)
to DST, and name the rules that decide it, at every layer:
  - EC2 security groups: an egress rule of one of the source ENI's groups and an ingress rule
    of one of the destination ENI's groups must both allow it;
  - network policy, when a cluster is known (a pod or Service is named, or --kubeconfig is given): for
    egress from the source pod and ingress to the destination pod, the ClusterNetworkPolicy
    Admin tier, then Calico's default tier (Calico's GlobalNetworkPolicy and NetworkPolicy,
    with every Kubernetes NetworkPolicy at order 1000 among them, as Calico orders them),
    then the Baseline tier; each layer's verdict is shown until one decides.
Replies are always allowed (both are stateful).

SRC and DST are each one of:
  eni-…                  a network interface (its primary private address)
  10.0.1.23              a private IPv4 address of a network interface in the VPC
  pod/NAMESPACE/NAME     a pod: its branch ENI (vpc.amazonaws.com/pod-eni annotation), or
                         else the node's ENI that holds the pod's IP (needs a kubeconfig)
  svc/NAMESPACE/NAME     (DST only) a Service: --port is the Service's port, and each ready
                         backend is judged on the port kube-proxy sends the flow to there
                         (its EndpointSlices: targetPort, named ports resolved per pod);
                         a headless Service's (clusterIP: None) ready backends are judged
                         on --port itself, which the client dials directly; denied when
                         any backend is, or when none is ready (needs a kubeconfig)
  db/ID                  an RDS database instance, also named by its endpoint hostname
                         (ID.….rds.amazonaws.com): the network interface the local VPC gives
                         it (tagged podsg:attach=rds:ID; on AWS, name it by its address)

An address that is a pod's (or a node's) is judged as that pod (node) by the policies.

Exit status: 0 allowed, 2 denied (by either), 1 error (the verdict could not be decided).
reach reads EC2 and Kubernetes only; it sends no packet. NACLs, routes and prefix-list
contents are not checked.`,
		Example: `  podsg reach pod/default/postgres-test 10.0.0.10 --port 5432 --ec2-endpoint http://127.0.0.1:8450
  podsg reach eni-0123456789abcdef0 pod/shop/web-7d4b9 --protocol icmp
  podsg reach pod/shop/frontend svc/shop/web --port 80
  podsg reach pod/default/postgres-test db/podsg-demo-postgres --port 5432 --ec2-endpoint http://127.0.0.1:8450`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			c, err := ec2Client(cmd.Context(), o.region, o.endpoint)
			if err != nil {
				return err
			}
			if strings.HasPrefix(args[0], reach.ServicePrefix) {
				return fmt.Errorf("%s: a Service is a destination only (the connection starts at a pod, a node or an address)", args[0])
			}
			d := reachDeps{ec2: c}
			if o.kubeconfig != "" || slices.ContainsFunc(args, func(a string) bool {
				return strings.HasPrefix(a, reach.PodPrefix) || strings.HasPrefix(a, reach.ServicePrefix)
			}) {
				var k clientsetPods
				if k, d.cluster, err = kubeClients(o.kubeconfig); err != nil {
					return err
				}
				d.pods, d.services = k, k
			}
			if slices.ContainsFunc(args, reach.IsDB) {
				if d.dbs, err = rdsDBs(cmd.Context(), o.region, o.endpoint); err != nil {
					return err
				}
			}
			if o.noPolicies {
				d.cluster = nil
			}
			return runReachWith(cmd.Context(), d, args[0], args[1], o.flow, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.flow.Protocol, "protocol", cloud.ProtocolTCP, "tcp, udp or icmp")
	f.IntVar(&o.flow.Port, "port", 0, "destination port (required for tcp and udp)")
	f.IntVar(&o.flow.ICMPType, "icmp-type", 8, "ICMP type (8: echo request)")
	f.IntVar(&o.flow.ICMPCode, "icmp-code", 0, "ICMP code")
	f.StringVar(&o.region, "region", "us-west-2", "AWS region")
	f.StringVar(&o.endpoint, "ec2-endpoint", "", "EC2 endpoint URL; empty for AWS (the local VPC's URL otherwise)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig for pod/… endpoints and network policies (default: $KUBECONFIG, then ~/.kube/config)")
	f.BoolVar(&o.noPolicies, "no-policies", false, "judge security groups only, not the cluster's network policies")
	return cmd
}

func (o *reachOptions) validate(cmd *cobra.Command) error {
	o.flow.Protocol = strings.ToLower(o.flow.Protocol)
	switch o.flow.Protocol {
	case cloud.ProtocolTCP, cloud.ProtocolUDP:
		if !cmd.Flags().Changed("port") {
			return fmt.Errorf("--port is required for %s", o.flow.Protocol)
		}
	case cloud.ProtocolICMP:
		if cmd.Flags().Changed("port") {
			return errors.New("--port applies to tcp and udp; icmp takes --icmp-type and --icmp-code")
		}
	default:
		return fmt.Errorf("--protocol %q: want tcp, udp or icmp", o.flow.Protocol)
	}
	return o.flow.Validate()
}

// reachDeps are where runReachWith looks things up; pods, cluster, services and dbs may be
// nil (then naming such an endpoint is an error saying what is missing; cluster nil: policies
// are not judged).
type reachDeps struct {
	ec2      reach.EC2
	pods     reach.Pods
	cluster  reach.Cluster
	services reach.Services
	dbs      reach.DBs
}

// runReach loads both ends from EC2 (and Kubernetes), evaluates the flow against security
// groups and, with a cluster, every policy layer, and writes the explanation; a flow either
// denies is an exitError with exitDenied.
func runReach(ctx context.Context, ec2 reach.EC2, pods reach.Pods, cluster reach.Cluster, src, dst string, f reach.Flow, out io.Writer) error {
	return runReachWith(ctx, reachDeps{ec2: ec2, pods: pods, cluster: cluster}, src, dst, f, out)
}

// runReachWith is runReach for every kind of endpoint: a Service destination is judged for
// each of its ready backends, on the port kube-proxy sends the flow to there.
func runReachWith(ctx context.Context, d reachDeps, src, dst string, f reach.Flow, out io.Writer) error {
	var ps *reach.Policies
	if d.cluster != nil {
		var err error
		if ps, err = reach.LoadPolicies(ctx, d.cluster); err != nil {
			return err
		}
	}
	sources := reach.Sources{EC2: d.ec2, Pods: d.pods, DBs: d.dbs}
	if !strings.HasPrefix(dst, reach.ServicePrefix) {
		allowed, err := reachOne(ctx, sources, ps, src, dst, f, out)
		if err == nil && !allowed {
			err = &exitError{code: exitDenied, msg: fmt.Sprintf("%s from %s to %s is denied", f, src, dst)}
		}
		return err
	}
	return reachService(ctx, sources, ps, d.services, src, dst, f, out)
}

// reachService judges a flow to a Service for each of its ready backends; the summary (each
// backend's verdict) leads, each backend's explanation follows. A Service without a ready
// backend is denied with the reason, before any layer is asked.
func reachService(ctx context.Context, sources reach.Sources, ps *reach.Policies, svcs reach.Services, src, dst string, f reach.Flow, out io.Writer) error {
	route, err := reach.LoadBackends(ctx, svcs, dst, f)
	if errors.Is(err, reach.ErrNoBackends) {
		w := &lineWriter{out: out}
		w.printf("DENIED: %s from %s to %s\n%v\n", f, src, dst, err)
		if w.err != nil {
			return w.err
		}
		return &exitError{code: exitDenied, msg: fmt.Sprintf("%s from %s to %s is denied: no ready backend", f, src, dst)}
	}
	if err != nil {
		return err
	}
	backends := route.Backends
	// Each backend's full explanation first, into a buffer, so that the summary can lead.
	var details strings.Builder
	var denied []string
	for i, b := range backends {
		bf := f
		bf.Port = b.Port
		fmt.Fprintf(&details, "\n── backend %d of %d: %s, %s ──\n", i+1, len(backends), b.Spec, bf)
		allowed, err := reachOne(ctx, sources, ps, src, b.Spec, bf, &details)
		if err != nil {
			return fmt.Errorf("backend %s of %s: %w", b.Spec, dst, err)
		}
		if !allowed {
			denied = append(denied, b.Spec)
		}
	}
	verdict := "ALLOWED to every backend"
	if len(denied) > 0 {
		verdict = fmt.Sprintf("DENIED to %d of %d backends", len(denied), len(backends))
	}
	w := &lineWriter{out: out}
	w.printf("%s: %s from %s to %s (%s)\n", verdict, f, src, dst, routeString(route, f))
	for _, b := range backends {
		w.printf("  %s (%s) port %d: %s\n", b.Spec, b.IP, b.Port, map[bool]string{true: "DENIED", false: "ALLOWED"}[slices.Contains(denied, b.Spec)])
	}
	w.printf("%s", details.String())
	if w.err != nil {
		return w.err
	}
	if len(denied) > 0 {
		return &exitError{code: exitDenied, msg: fmt.Sprintf("%s from %s to %s is denied to %s", f, src, dst, strings.Join(denied, ", "))}
	}
	return nil
}

// routeString says how the flow gets to the backends: kube-proxy's translation of the Service
// port, or, for a headless Service, none.
func routeString(r reach.Route, f reach.Flow) string {
	if r.Headless {
		s := fmt.Sprintf("headless, no ClusterIP: DNS answers with the ready backends' addresses and the client connects to one directly on port %d, with no kube-proxy translation", f.Port)
		if sp := r.Port; sp.Port != 0 && sp.TargetPort.String() != fmt.Sprint(sp.Port) && sp.TargetPort.String() != "0" {
			s += fmt.Sprintf("; its port %d -> targetPort %s applies only to clients that look up DNS SRV records", sp.Port, sp.TargetPort.String())
		}
		return s
	}
	sp := r.Port
	target := sp.TargetPort.String()
	if sp.TargetPort.IntValue() == 0 && sp.TargetPort.StrVal == "" {
		target = fmt.Sprint(sp.Port)
	}
	return fmt.Sprintf("port %d, targetPort %s; kube-proxy sends it to one ready backend", sp.Port, target)
}

// reachOne explains one flow between two ends that are not Services, and says whether both
// security groups and (with ps) policies allow it.
func reachOne(ctx context.Context, s reach.Sources, ps *reach.Policies, src, dst string, f reach.Flow, out io.Writer) (bool, error) {
	in, err := s.Load(ctx, src, dst)
	if err != nil {
		return false, err
	}
	v := reach.Evaluate(in, f)
	var pol *policyVerdict
	if ps != nil {
		pol = &policyVerdict{Result: ps.Judge(in.Src, in.Dst, f), NotServed: ps.NotServed, Refused: ps.Refused}
	}
	if err := writeVerdict(out, v, pol); err != nil {
		return false, err
	}
	return v.Allowed && (pol == nil || pol.Allowed), nil
}

// kubeClients reads pods and Services (for pod/… and svc/… endpoints) and lists the
// cluster's policy state.
func kubeClients(kubeconfig string) (clientsetPods, reach.Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return clientsetPods{}, nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return clientsetPods{}, nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: policyScheme()})
	if err != nil {
		return clientsetPods{}, nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	return clientsetPods{cs}, c, nil
}

// policyScheme knows the built-in types and every policy API reach and explain read.
func policyScheme() *runtime.Scheme {
	s := explainScheme()
	utilruntime.Must(cnpv1.Install(s))
	utilruntime.Must(calicov3.AddToScheme(s))
	return s
}

// clientsetPods reads pods through a clientset.
type clientsetPods struct{ cs kubernetes.Interface }

func (p clientsetPods) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return p.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

// GetService implements reach.Services.
func (p clientsetPods) GetService(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	return p.cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
}

// EndpointSlices implements reach.Services: the slices the EndpointSlice controller keeps for
// the Service, which kube-proxy programs.
func (p clientsetPods) EndpointSlices(ctx context.Context, namespace, service string) ([]discoveryv1.EndpointSlice, error) {
	l, err := p.cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// rdsDB lists database instances through the RDS API: the local VPC's at endpoint (which
// serves RDS beside EC2), or AWS's for "".
type rdsDB struct{ api *rds.Client }

func rdsDBs(ctx context.Context, region, endpoint string) (reach.DBs, error) {
	if endpoint == "" {
		cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("loading AWS configuration: %w", err)
		}
		return rdsDB{rds.NewFromConfig(cfg)}, nil
	}
	cfg, err := localVPCConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return rdsDB{rds.NewFromConfig(cfg, func(o *rds.Options) { o.BaseEndpoint = aws.String(endpoint) })}, nil
}

// DBInstances implements reach.DBs.
func (r rdsDB) DBInstances(ctx context.Context) ([]reach.DBInstance, error) {
	var out []reach.DBInstance
	pages := rds.NewDescribeDBInstancesPaginator(r.api, &rds.DescribeDBInstancesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, db := range page.DBInstances {
			d := reach.DBInstance{ID: aws.ToString(db.DBInstanceIdentifier)}
			if db.Endpoint != nil {
				d.Hostname, d.Port = aws.ToString(db.Endpoint.Address), int(aws.ToInt32(db.Endpoint.Port))
			}
			if db.DBSubnetGroup != nil {
				d.VPCID = aws.ToString(db.DBSubnetGroup.VpcId)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// policyVerdict is the policy layers' answer, the policy APIs the cluster does not serve, and
// the policies podsg-agent refuses (left out of the answer, as the nodes leave them out).
type policyVerdict struct {
	netpol.Result
	NotServed []string
	Refused   []netpol.Refusal
}

// writeVerdict explains v and pol (nil: policies not checked): the verdict line, then each
// side's ENI, groups and deciding rules, then each direction's policy layers.
func writeVerdict(out io.Writer, v reach.Verdict, pol *policyVerdict) error {
	verdict := "DENIED"
	switch {
	case pol != nil && !pol.Allowed:
	case v.Allowed:
		verdict = "ALLOWED"
	case undecided(v.Egress) && (v.Ingress.Allowed() || undecided(v.Ingress)) || undecided(v.Ingress) && v.Egress.Allowed():
		verdict = "DENIED unless a prefix list named below holds the peer's address"
	}
	w := &lineWriter{out: out}
	w.printf("%s: %s from %s to %s\n", verdict, v.Flow, endpointString(v.Src), endpointString(v.Dst))
	if v.Local != "" {
		w.printf("security groups do not apply: %s\n", v.Local)
	}
	w.printf("\nSecurity groups: %s\n", allowedWord(v.Allowed))
	writeSide(w, v, v.Egress, true)
	writeSide(w, v, v.Ingress, false)
	if pol != nil {
		writePolicies(w, v, pol)
	}
	if v.Allowed && v.Local == "" && (pol == nil || pol.Allowed) {
		w.printf("\nReplies are allowed too: security groups and policies are stateful.\n")
	}
	return w.err
}

// writePolicies explains each direction's policy layers: every layer's step until one decided.
func writePolicies(w *lineWriter, v reach.Verdict, pol *policyVerdict) {
	w.printf("\nNetwork policy: %s (ClusterNetworkPolicy Admin tier, then Calico's default tier with NetworkPolicy at order %d, then Baseline tier)\n",
		allowedWord(pol.Allowed), netpol.KubernetesNetworkPolicyOrder)
	for _, side := range []struct {
		dir string
		e   reach.Endpoint
		j   netpol.Judgement
	}{{"egress from", v.Src, pol.Egress}, {"ingress to", v.Dst, pol.Ingress}} {
		if !side.j.Enforced {
			w.printf("%s %s: no policy applies (not a pod, a host-network pod, or the pod itself)\n", side.dir, endpointString(side.e))
			continue
		}
		how := "allowed: no layer decided, and Kubernetes allows by default"
		if d, ok := side.j.Decider(); ok {
			how = fmt.Sprintf("%s by %s: %s %s", strings.ToLower(allowedWord(side.j.Allowed)), d.Layer, d.Policy, d.Rule)
		}
		w.printf("%s %s: %s\n", side.dir, endpointString(side.e), how)
		for _, s := range side.j.Steps {
			w.printf("  %s\n", s)
		}
	}
	if len(pol.NotServed) > 0 {
		w.printf("(the cluster does not serve %s: no such policy applies)\n", strings.Join(pol.NotServed, ", "))
	}
	for _, r := range pol.Refused {
		w.printf("(left out, as podsg-agent does not enforce it: %v)\n", r)
	}
}

func allowedWord(allowed bool) string {
	if allowed {
		return "ALLOWED"
	}
	return "DENIED"
}

func writeSide(w *lineWriter, v reach.Verdict, s reach.Side, egress bool) {
	dir, self, peer := "ingress to", v.Dst, v.Src
	if egress {
		dir, self, peer = "egress from", v.Src, v.Dst
	}
	groups := make([]string, 0, len(s.Groups))
	for _, g := range s.Groups {
		groups = append(groups, groupString(g))
	}
	w.printf("%s %s (%s, %s), groups %s\n", dir, s.ENI.ID, s.ENI.Type, self.IP, orNone(strings.Join(groups, ", ")))
	for _, m := range s.Allowing {
		carries := ""
		if m.Rule.ReferencedGroupID != "" {
			carries = ", which " + peer.ENI.ID + " carries"
		}
		w.printf("  allowed by %s %s: %s%s\n", groupString(m.Group), m.Rule.ID, ruleString(m.Rule, v.Groups), carries)
	}
	if !s.Allowed() {
		w.printf("  denied: no %s rule allows %s %s %s\n", direction(egress), v.Flow, peerWord(egress), peer.IP)
		for _, g := range s.Groups {
			for _, r := range g.Rules {
				if r.Egress == egress {
					w.printf("    %s %s: %s\n", groupString(g), r.ID, ruleString(r, v.Groups))
				}
			}
		}
	}
	for _, m := range s.Unknown {
		w.printf("  not checked: %s %s: %s (reach does not expand prefix lists)\n", groupString(m.Group), m.Rule.ID, ruleString(m.Rule, v.Groups))
	}
}

// undecided: no rule of the side allows the flow, but a prefix-list rule might.
func undecided(s reach.Side) bool { return !s.Allowed() && len(s.Unknown) > 0 }

func endpointString(e reach.Endpoint) string {
	if e.Spec == e.IP.String() {
		return e.Spec
	}
	return fmt.Sprintf("%s (%s)", e.Spec, e.IP)
}

func groupString(g reach.Group) string {
	if g.Name == "" {
		return g.ID
	}
	return fmt.Sprintf("%s (%s)", g.ID, g.Name)
}

func direction(egress bool) string {
	if egress {
		return "egress"
	}
	return "ingress"
}

func peerWord(egress bool) string {
	if egress {
		return "to"
	}
	return "from"
}

// ruleString renders a rule as "tcp 8000-8010 from sg-… (name)" or "all traffic to 0.0.0.0/0".
func ruleString(r cloud.SecurityGroupRule, groups map[string]reach.Group) string {
	peer := r.CIDR
	switch {
	case r.ReferencedGroupID != "":
		peer = groupString(reach.Group{ID: r.ReferencedGroupID, Name: groups[r.ReferencedGroupID].Name})
	case r.CIDRv6 != "":
		peer = r.CIDRv6
	case r.PrefixListID != "":
		peer = "prefix list " + r.PrefixListID
	}
	return fmt.Sprintf("%s %s %s", trafficString(r), peerWord(r.Egress), peer)
}

func trafficString(r cloud.SecurityGroupRule) string {
	switch strings.ToLower(r.Protocol) {
	case cloud.ProtocolAll, "all":
		return "all traffic"
	case cloud.ProtocolTCP, cloud.ProtocolUDP, "6", "17":
		name := map[string]string{"6": "tcp", "17": "udp"}[r.Protocol]
		if name == "" {
			name = strings.ToLower(r.Protocol)
		}
		switch {
		case r.FromPort < 0 || r.ToPort < r.FromPort || r.FromPort == 0 && r.ToPort == 65535:
			return name + " all ports"
		case r.FromPort == r.ToPort:
			return fmt.Sprintf("%s %d", name, r.FromPort)
		}
		return fmt.Sprintf("%s %d-%d", name, r.FromPort, r.ToPort)
	case cloud.ProtocolICMP, "1":
		switch {
		case r.FromPort < 0:
			return "all icmp"
		case r.ToPort < 0:
			return fmt.Sprintf("icmp type %d", r.FromPort)
		}
		return fmt.Sprintf("icmp type %d code %d", r.FromPort, r.ToPort)
	}
	return "protocol " + r.Protocol
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// lineWriter keeps the first write error, so that a long explanation checks it once.
type lineWriter struct {
	out io.Writer
	err error
}

func (w *lineWriter) printf(format string, args ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.out, format, args...)
	}
}
