package fake

import (
	"context"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/cloud"
)

// DescribeInstance returns an instance with its attached ENIs, primary first.
func (f *EC2) DescribeInstance(ctx context.Context, id string) (cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, ActionDescribeInstance)
	if err != nil {
		return cloud.Instance{}, err
	}
	if _, ok := f.instances[id]; !ok {
		return cloud.Instance{}, f.end(flt, apiErr(ActionDescribeInstance, "InvalidInstanceID.NotFound", cloud.ErrNotFound,
			"The instance ID '%s' does not exist", id))
	}
	return f.instance(id), f.end(flt, nil)
}

// DescribeInstances returns the instances of ids that exist, in one call (the fake has no
// pages), as EC2 does with an instance-id filter: a missing one is left out.
func (f *EC2) DescribeInstances(ctx context.Context, ids []string) ([]cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, ActionDescribeInstance)
	if err != nil {
		return nil, err
	}
	var out []cloud.Instance
	for _, id := range ids {
		if _, ok := f.instances[id]; ok {
			out = append(out, f.instance(id))
		}
	}
	return out, f.end(flt, nil)
}

// instance renders an existing instance with its attached ENIs, primary first.
func (f *EC2) instance(id string) cloud.Instance {
	in := f.instances[id]
	sn := f.subnets[in.SubnetID]
	out := cloud.Instance{
		ID: in.ID, Type: in.Type, AvailabilityZone: sn.AvailabilityZone, VPCID: sn.VPCID,
		SubnetID: in.SubnetID, SecurityGroups: append([]string(nil), in.SecurityGroups...),
	}
	for _, eni := range f.enis {
		if eni.InstanceID == id {
			out.NetworkInterfaces = append(out.NetworkInterfaces, copyENI(eni))
		}
	}
	slices.SortFunc(out.NetworkInterfaces, func(a, b cloud.NetworkInterface) int { return a.DeviceIndex - b.DeviceIndex })
	if len(out.NetworkInterfaces) > 0 {
		out.PrivateIP = out.NetworkInterfaces[0].PrivateIP
	}
	return out
}

// DescribeSubnet returns a subnet.
func (f *EC2) DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, ActionDescribeSubnet)
	if err != nil {
		return cloud.Subnet{}, err
	}
	sn, ok := f.subnets[id]
	if !ok {
		return cloud.Subnet{}, f.end(flt, apiErr(ActionDescribeSubnet, "InvalidSubnetID.NotFound", cloud.ErrNotFound,
			"The subnet ID '%s' does not exist", id))
	}
	return sn.Subnet, f.end(flt, nil)
}

// DescribeSecurityGroups returns the named groups, or all groups for no ids. Like EC2, one
// missing id fails the whole call, naming the missing ids.
func (f *EC2) DescribeSecurityGroups(ctx context.Context, ids []string) ([]cloud.SecurityGroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, ActionDescribeSecurityGroups)
	if err != nil {
		return nil, err
	}
	if err := f.checkGroups(ActionDescribeSecurityGroups, ids); err != nil {
		return nil, f.end(flt, err)
	}
	var out []cloud.SecurityGroup
	if len(ids) == 0 {
		for _, g := range f.groups {
			out = append(out, g)
		}
	}
	for _, id := range ids {
		out = append(out, f.groups[id])
	}
	slices.SortFunc(out, func(a, b cloud.SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
	return out, f.end(flt, nil)
}

// checkGroups fails like EC2 when any group does not exist.
func (f *EC2) checkGroups(action string, ids []string) error {
	var missing []string
	for _, id := range ids {
		if _, ok := f.groups[id]; !ok {
			missing = append(missing, "'"+id+"'")
		}
	}
	if len(missing) == 1 {
		return apiErr(action, "InvalidGroup.NotFound", cloud.ErrNotFound, "The security group %s does not exist", missing[0])
	}
	if len(missing) > 1 {
		return apiErr(action, "InvalidGroup.NotFound", cloud.ErrNotFound, "The security groups %s do not exist",
			strings.Join(missing, ", "))
	}
	return nil
}

// DescribeNetworkInterfaces returns the ENIs matching every set field of flt, sorted by id.
// Naming ids that do not exist fails, as in EC2.
func (f *EC2) DescribeNetworkInterfaces(ctx context.Context, flt cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, err := f.begin(ctx, ActionDescribeNetworkInterfaces)
	if err != nil {
		return nil, err
	}
	for _, id := range flt.IDs {
		if _, ok := f.enis[id]; !ok {
			return nil, f.end(ft, apiErr(ActionDescribeNetworkInterfaces, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
				"The networkInterface ID '%s' does not exist", id))
		}
	}
	var out []cloud.NetworkInterface
	for _, eni := range f.enis {
		if matches(eni, flt) {
			out = append(out, copyENI(eni))
		}
	}
	slices.SortFunc(out, func(a, b cloud.NetworkInterface) int { return strings.Compare(a.ID, b.ID) })
	return out, f.end(ft, nil)
}

func matches(eni *cloud.NetworkInterface, flt cloud.NetworkInterfaceFilter) bool {
	if len(flt.IDs) > 0 && !slices.Contains(flt.IDs, eni.ID) {
		return false
	}
	if (flt.InstanceID != "" && eni.InstanceID != flt.InstanceID) ||
		(flt.SubnetID != "" && eni.SubnetID != flt.SubnetID) ||
		(flt.Type != "" && eni.Type != flt.Type) {
		return false
	}
	return matchesTags(eni.Tags, flt)
}

// matchesTags: every tag of flt.Tags, and one of the values of each key of flt.TagsAnyOf.
func matchesTags(tags map[string]string, flt cloud.NetworkInterfaceFilter) bool {
	for k, v := range flt.Tags {
		got, ok := tags[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	for k, vs := range flt.TagsAnyOf {
		if got, ok := tags[k]; !ok || !slices.Contains(vs, got) {
			return false
		}
	}
	return true
}

// CreateTags adds or overwrites tags on ENIs.
func (f *EC2) CreateTags(ctx context.Context, ids []string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, ActionCreateTags)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, ok := f.enis[id]; !ok {
			return f.end(flt, apiErr(ActionCreateTags, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
				"The networkInterface ID '%s' does not exist", id))
		}
	}
	for _, id := range ids {
		for k, v := range tags {
			f.enis[id].Tags[k] = v
		}
	}
	return f.end(flt, nil)
}
