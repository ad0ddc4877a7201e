// Package fake is an in-memory, EC2-faithful implementation of the calls podsg makes, for
// controller tests: it keeps state (instances, subnets, groups, ENIs, trunk associations),
// honours ClientToken idempotency and EC2's limits, records every call and injects faults.
// It must behave like EC2 (and like podsg-vpc), because the same tests later run against the
// local VPC server: when in doubt, copy EC2's behaviour, not the controller's convenience.
package fake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/podsg/podsg/internal/cloud"
)

// Action names, as EC2 spells them; used for call recording and error injection.
const (
	ActionDescribeInstance                   = "DescribeInstances"
	ActionDescribeSubnet                     = "DescribeSubnets"
	ActionDescribeSecurityGroups             = "DescribeSecurityGroups"
	ActionCreateNetworkInterface             = "CreateNetworkInterface"
	ActionDeleteNetworkInterface             = "DeleteNetworkInterface"
	ActionAttachNetworkInterface             = "AttachNetworkInterface"
	ActionDetachNetworkInterface             = "DetachNetworkInterface"
	ActionDescribeNetworkInterfaces          = "DescribeNetworkInterfaces"
	ActionAssociateTrunkInterface            = "AssociateTrunkInterface"
	ActionDisassociateTrunkInterface         = "DisassociateTrunkInterface"
	ActionDescribeTrunkInterfaceAssociations = "DescribeTrunkInterfaceAssociations"
	ActionCreateTags                         = "CreateTags"
	ActionModifyNetworkInterfaceAttribute    = "ModifyNetworkInterfaceAttribute"
)

// DefaultSecurityGroupsPerENI is EC2's default quota of security groups per network interface.
const DefaultSecurityGroupsPerENI = 5

// Instance seeds an EC2 instance. A primary ENI (device index 0) is created for it.
type Instance struct {
	ID             string
	Type           string
	SubnetID       string
	SecurityGroups []string
	// MaxENIs is how many ENIs may be attached (primary included); 0 means 3.
	MaxENIs int
	// MaxBranches is how many branch ENIs a trunk on this instance may carry; 0 means 9.
	MaxBranches int
}

// EC2 is the fake. The zero value is not usable; call New.
type EC2 struct {
	mu sync.Mutex

	// SecurityGroupsPerENI is the per-ENI security group quota (EC2 default 5).
	SecurityGroupsPerENI int

	seq       map[string]int
	instances map[string]*Instance
	subnets   map[string]*subnet
	groups    map[string]cloud.SecurityGroup
	enis      map[string]*cloud.NetworkInterface
	assocs    map[string]cloud.TrunkAssociation
	// tokens maps action+ClientToken to the created resource and a fingerprint of the
	// parameters, so a retry returns the same resource and a different call with the same
	// token fails like EC2's IdempotentParameterMismatch.
	tokens map[string]tokenEntry

	faults
	calls []Call
}

type subnet struct {
	cloud.Subnet
	next int // next host offset to hand out
}

type tokenEntry struct {
	id          string
	fingerprint string
}

// Call is one recorded call.
type Call struct {
	Action string
	Err    error
}

// New returns an empty fake.
func New() *EC2 {
	f := &EC2{}
	f.Reset()
	return f
}

// Reset forgets all state, recorded calls and pending faults.
func (f *EC2) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.SecurityGroupsPerENI = DefaultSecurityGroupsPerENI
	f.seq = map[string]int{}
	f.instances = map[string]*Instance{}
	f.subnets = map[string]*subnet{}
	f.groups = map[string]cloud.SecurityGroup{}
	f.enis = map[string]*cloud.NetworkInterface{}
	f.assocs = map[string]cloud.TrunkAssociation{}
	f.tokens = map[string]tokenEntry{}
	f.faults = faults{}
	f.calls = nil
}

// AddSubnet seeds a subnet; CIDR must be an IPv4 /16../28.
func (f *EC2) AddSubnet(s cloud.Subnet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subnets[s.ID] = &subnet{Subnet: s, next: 4} // EC2 reserves the first four addresses
}

// AddSecurityGroup seeds a security group.
func (f *EC2) AddSecurityGroup(g cloud.SecurityGroup) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[g.ID] = g
}

// AddInstance seeds an instance in an existing subnet, with its primary ENI.
func (f *EC2) AddInstance(in Instance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sn, ok := f.subnets[in.SubnetID]
	if !ok {
		return fmt.Errorf("adding instance %s: unknown subnet %s", in.ID, in.SubnetID)
	}
	if in.MaxENIs == 0 {
		in.MaxENIs = 3
	}
	if in.MaxBranches == 0 {
		in.MaxBranches = 9
	}
	f.instances[in.ID] = &in
	eni := f.newENI(sn, cloud.InterfaceTypeInterface, "primary", in.SecurityGroups, nil)
	eni.Status, eni.InstanceID, eni.DeviceIndex = "in-use", in.ID, 0
	eni.AttachmentID = f.nextID("eni-attach")
	return nil
}

// NetworkInterface returns a copy of an ENI, for assertions.
func (f *EC2) NetworkInterface(id string) (cloud.NetworkInterface, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	eni, ok := f.enis[id]
	if !ok {
		return cloud.NetworkInterface{}, false
	}
	return copyENI(eni), true
}

// NetworkInterfaces returns copies of all ENIs of a type ("" for all), sorted by id.
func (f *EC2) NetworkInterfaces(typ string) []cloud.NetworkInterface {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.NetworkInterface
	for _, eni := range f.enis {
		if typ == "" || eni.Type == typ {
			out = append(out, copyENI(eni))
		}
	}
	slices.SortFunc(out, func(a, b cloud.NetworkInterface) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Associations returns all trunk associations, sorted by id.
func (f *EC2) Associations() []cloud.TrunkAssociation {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]cloud.TrunkAssociation, 0, len(f.assocs))
	for _, a := range f.assocs {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b cloud.TrunkAssociation) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Calls returns how many times action was called (failed calls included).
func (f *EC2) Calls(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Action == action {
			n++
		}
	}
	return n
}

// CallLog returns every recorded call in order.
func (f *EC2) CallLog() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// begin records a call and returns an injected fault to return before any effect, if any.
// Callers hold f.mu.
func (f *EC2) begin(ctx context.Context, action string) (fault, error) {
	if err := ctx.Err(); err != nil {
		f.calls = append(f.calls, Call{Action: action, Err: err})
		return fault{}, err
	}
	flt := f.take(action)
	if flt.err != nil && !flt.after {
		f.calls = append(f.calls, Call{Action: action, Err: flt.err})
		return fault{}, flt.err
	}
	f.calls = append(f.calls, Call{Action: action})
	return flt, nil
}

// end returns err, or an injected after-the-effect fault (a lost response) if the call
// succeeded.
func (f *EC2) end(flt fault, err error) error {
	if err != nil {
		f.calls[len(f.calls)-1].Err = err
		return err
	}
	if flt.after && flt.err != nil {
		f.calls[len(f.calls)-1].Err = flt.err
		return flt.err
	}
	return nil
}

func (f *EC2) nextID(prefix string) string {
	f.seq[prefix]++
	return fmt.Sprintf("%s-%017x", prefix, f.seq[prefix])
}

func apiErr(op, code string, kind error, format string, args ...any) error {
	return &cloud.APIError{Op: op, Code: code, Message: fmt.Sprintf(format, args...), Kind: kind}
}

func copyENI(e *cloud.NetworkInterface) cloud.NetworkInterface {
	c := *e
	c.SecurityGroups = append([]string(nil), e.SecurityGroups...)
	c.SecondaryIPs = append([]string(nil), e.SecondaryIPs...)
	c.Tags = make(map[string]string, len(e.Tags))
	for k, v := range e.Tags {
		c.Tags[k] = v
	}
	return c
}
