package reach

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/policy"
)

// EC2 is what Load needs of EC2 (internal/cloud/ec2.Client).
type EC2 interface {
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	NetworkInterfacesByAddress(ctx context.Context, ip string) ([]cloud.NetworkInterface, error)
	DescribeSecurityGroups(ctx context.Context, ids []string) ([]cloud.SecurityGroup, error)
	DescribeSecurityGroupRules(ctx context.Context, groupIDs []string) ([]cloud.SecurityGroupRule, error)
}

// Pods is what Load needs of Kubernetes, for endpoints named pod/NAMESPACE/NAME.
type Pods interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// PodPrefix starts an endpoint that names a pod: pod/NAMESPACE/NAME.
const PodPrefix = "pod/"

// Load resolves the two endpoints to ENIs and reads the rules of their groups. An endpoint is
// an ENI id, a private IPv4 address of an ENI, or pod/NAMESPACE/NAME (pods may be nil when
// neither names a pod). An address two VPCs share is taken in the other endpoint's VPC.
func Load(ctx context.Context, ec2 EC2, pods Pods, src, dst string) (Input, error) {
	return Sources{EC2: ec2, Pods: pods}.Load(ctx, src, dst)
}

// Sources are where endpoints are looked up: EC2 always, Kubernetes for pods, RDS for
// databases (nil when not given: naming such an endpoint is then an error saying so).
type Sources struct {
	EC2  EC2
	Pods Pods
	DBs  DBs
}

// Load is Load with databases too: db/ID or an RDS endpoint hostname is the database
// instance's network interface.
func (s Sources) Load(ctx context.Context, src, dst string) (Input, error) {
	srcs, err := resolve(ctx, s, src)
	if err != nil {
		return Input{}, err
	}
	dsts, err := resolve(ctx, s, dst)
	if err != nil {
		return Input{}, err
	}
	in := Input{}
	if in.Src, in.Dst, err = pair(srcs, dsts); err != nil {
		return Input{}, err
	}
	in.Groups, err = loadGroups(ctx, s.EC2, in.Src.ENI, in.Dst.ENI)
	return in, err
}

// resolve returns the endpoints spec may name: one, or for an address, one per VPC that has it.
func resolve(ctx context.Context, s Sources, spec string) ([]Endpoint, error) {
	ec2, pods := s.EC2, s.Pods
	switch {
	case strings.HasPrefix(spec, ServicePrefix):
		return nil, fmt.Errorf("%s: a Service is judged through each of its backends (podsg reach takes it as the destination)", spec)
	case IsDB(spec):
		return resolveDB(ctx, ec2, s.DBs, spec)
	case strings.HasPrefix(spec, "eni-"):
		eni, err := eniByID(ctx, ec2, spec)
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(eni.PrivateIP)
		if err != nil {
			return nil, fmt.Errorf("%s: primary address %q: %w", spec, eni.PrivateIP, err)
		}
		return []Endpoint{{Spec: spec, IP: ip, ENI: eni}}, nil
	case strings.HasPrefix(spec, PodPrefix):
		return resolvePod(ctx, ec2, pods, spec)
	}
	ip, err := netip.ParseAddr(spec)
	if err != nil || !ip.Is4() {
		return nil, fmt.Errorf("%q is neither an ENI id (eni-…), a private IPv4 address, pod/NAMESPACE/NAME, svc/NAMESPACE/NAME nor db/ID (or an RDS endpoint hostname)", spec)
	}
	return byAddress(ctx, ec2, spec, ip)
}

func eniByID(ctx context.Context, ec2 EC2, id string) (cloud.NetworkInterface, error) {
	enis, err := ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{id}})
	if err != nil {
		return cloud.NetworkInterface{}, fmt.Errorf("looking up %s: %w", id, err)
	}
	if len(enis) != 1 {
		return cloud.NetworkInterface{}, fmt.Errorf("looking up %s: EC2 returned %d network interfaces", id, len(enis))
	}
	return enis[0], nil
}

func byAddress(ctx context.Context, ec2 EC2, spec string, ip netip.Addr) ([]Endpoint, error) {
	enis, err := ec2.NetworkInterfacesByAddress(ctx, ip.String())
	if err != nil {
		return nil, fmt.Errorf("looking up the network interface with address %s: %w", ip, err)
	}
	if len(enis) == 0 {
		return nil, fmt.Errorf("no network interface has the private address %s", ip)
	}
	out := make([]Endpoint, 0, len(enis))
	for _, e := range enis {
		out = append(out, Endpoint{Spec: spec, IP: ip, ENI: e})
	}
	return out, nil
}

// resolvePod finds the ENI a pod's traffic leaves through: its branch ENI when podsg (or
// AWS's controller) gave it one, else the node's ENI holding the pod's address.
func resolvePod(ctx context.Context, ec2 EC2, pods Pods, spec string) ([]Endpoint, error) {
	ns, name, ok := strings.Cut(strings.TrimPrefix(spec, PodPrefix), "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%q: want pod/NAMESPACE/NAME", spec)
	}
	if pods == nil {
		return nil, fmt.Errorf("%s: naming a pod needs a Kubernetes cluster (--kubeconfig)", spec)
	}
	pod, err := pods.GetPod(ctx, ns, name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", spec, err)
	}
	if ann := pod.Annotations[v1beta1.AnnotationPodENI]; ann != "" {
		enis, err := v1beta1.ParsePodENIs(ann)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
		if len(enis) > 0 {
			return branchEndpoint(ctx, ec2, spec, enis[0])
		}
	}
	if policy.WantsBranchENI(pod) {
		return nil, fmt.Errorf("%s asks for a branch ENI but has no %s annotation yet: it has no network to check (is podsg-controller running?)",
			spec, v1beta1.AnnotationPodENI)
	}
	if pod.Status.PodIP == "" {
		return nil, fmt.Errorf("%s has no IP address yet", spec)
	}
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if err != nil || !ip.Is4() {
		return nil, fmt.Errorf("%s: pod IP %q is not an IPv4 address", spec, pod.Status.PodIP)
	}
	return byAddress(ctx, ec2, spec, ip)
}

func branchEndpoint(ctx context.Context, ec2 EC2, spec string, pe v1beta1.PodENI) ([]Endpoint, error) {
	eni, err := eniByID(ctx, ec2, pe.ENIID)
	if err != nil {
		return nil, fmt.Errorf("%s's branch ENI: %w", spec, err)
	}
	ip, err := netip.ParseAddr(pe.PrivateIP)
	if err != nil {
		ip, err = netip.ParseAddr(eni.PrivateIP) // AWS's older controllers wrote fewer fields
	}
	if err != nil {
		return nil, fmt.Errorf("%s: no address in its %s annotation nor on %s", spec, v1beta1.AnnotationPodENI, eni.ID)
	}
	return []Endpoint{{Spec: spec, IP: ip, ENI: eni}}, nil
}

// pair picks one source and one destination in the same VPC: security groups decide traffic
// inside a VPC, and an address is unique only there.
func pair(srcs, dsts []Endpoint) (Endpoint, Endpoint, error) {
	var pairs [][2]Endpoint
	for _, s := range srcs {
		for _, d := range dsts {
			if s.ENI.VPCID == d.ENI.VPCID {
				pairs = append(pairs, [2]Endpoint{s, d})
			}
		}
	}
	switch len(pairs) {
	case 1:
		return pairs[0][0], pairs[0][1], nil
	case 0:
		return Endpoint{}, Endpoint{}, fmt.Errorf("%s is in %s and %s in %s: reach checks traffic inside one VPC",
			srcs[0].Spec, vpcs(srcs), dsts[0].Spec, vpcs(dsts))
	}
	return Endpoint{}, Endpoint{}, fmt.Errorf("%s and %s are both in %s: name a side by its ENI id to choose",
		srcs[0].Spec, dsts[0].Spec, vpcs(append(srcs, dsts...)))
}

func vpcs(es []Endpoint) string {
	var ids []string
	for _, e := range es {
		if !slices.Contains(ids, e.ENI.VPCID) {
			ids = append(ids, e.ENI.VPCID)
		}
	}
	return strings.Join(ids, " and ")
}

// loadGroups reads the groups of both ENIs with their rules, and the names of the groups
// those rules reference.
func loadGroups(ctx context.Context, ec2 EC2, enis ...cloud.NetworkInterface) (map[string]Group, error) {
	var ids []string
	for _, e := range enis {
		for _, g := range e.SecurityGroups {
			if !slices.Contains(ids, g) {
				ids = append(ids, g)
			}
		}
	}
	groups := make(map[string]Group, len(ids))
	rules, err := ec2.DescribeSecurityGroupRules(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the rules of %s: %w", strings.Join(ids, ", "), err)
	}
	named := slices.Clone(ids)
	for _, r := range rules {
		g := groups[r.GroupID]
		g.ID = r.GroupID
		g.Rules = append(g.Rules, r)
		groups[r.GroupID] = g
		if ref := r.ReferencedGroupID; ref != "" && !slices.Contains(named, ref) {
			named = append(named, ref)
		}
	}
	sgs, err := ec2.DescribeSecurityGroups(ctx, named)
	if errors.Is(err, cloud.ErrNotFound) && len(named) > len(ids) {
		// A referenced group of another account or a peered VPC: do without its name.
		sgs, err = ec2.DescribeSecurityGroups(ctx, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("reading security groups %s: %w", strings.Join(named, ", "), err)
	}
	for _, sg := range sgs {
		g := groups[sg.ID]
		g.ID, g.Name = sg.ID, sg.Name
		groups[sg.ID] = g
	}
	return groups, nil
}
