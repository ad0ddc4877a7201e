package ec2

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/cloud"
)

// CreateNetworkInterface creates an ENI. With in.ClientToken set, a retry returns the ENI the
// first call created.
func (c *Client) CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error) {
	req := &ec2.CreateNetworkInterfaceInput{
		SubnetId:          aws.String(in.SubnetID),
		Groups:            in.SecurityGroups,
		TagSpecifications: tagSpecs(types.ResourceTypeNetworkInterface, in.Tags),
	}
	if in.Description != "" {
		req.Description = aws.String(in.Description)
	}
	if in.Type != "" && in.Type != cloud.InterfaceTypeInterface {
		req.InterfaceType = types.NetworkInterfaceCreationType(in.Type)
	}
	if in.ClientToken != "" {
		req.ClientToken = aws.String(in.ClientToken)
	}
	if in.SecondaryIPCount > 0 {
		req.SecondaryPrivateIpAddressCount = aws.Int32(int32(in.SecondaryIPCount)) //nolint:gosec // bounded by the instance type's IP limit
	}
	out, err := call(ctx, c, "CreateNetworkInterface", true, func(ctx context.Context) (*ec2.CreateNetworkInterfaceOutput, error) {
		return c.api.CreateNetworkInterface(ctx, req)
	})
	if err != nil {
		return cloud.NetworkInterface{}, err
	}
	return fromENI(out.NetworkInterface), nil
}

// DeleteNetworkInterface deletes an ENI.
func (c *Client) DeleteNetworkInterface(ctx context.Context, id string) error {
	_, err := call(ctx, c, "DeleteNetworkInterface", true, func(ctx context.Context) (*ec2.DeleteNetworkInterfaceOutput, error) {
		return c.api.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	})
	return err
}

// AttachNetworkInterface attaches an ENI to an instance at deviceIndex and returns the
// attachment id.
func (c *Client) AttachNetworkInterface(ctx context.Context, eniID, instanceID string, deviceIndex int) (string, error) {
	out, err := call(ctx, c, "AttachNetworkInterface", true, func(ctx context.Context) (*ec2.AttachNetworkInterfaceOutput, error) {
		return c.api.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
			NetworkInterfaceId: aws.String(eniID), InstanceId: aws.String(instanceID),
			DeviceIndex: aws.Int32(int32(deviceIndex)), //nolint:gosec // device indexes are small
		})
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.AttachmentId), nil
}

// SetDeleteOnTermination makes EC2 delete the ENI when its instance terminates, so that an
// ENI attached by podsg-agent dies with its node instead of leaking.
func (c *Client) SetDeleteOnTermination(ctx context.Context, eniID, attachmentID string) error {
	_, err := call(ctx, c, "ModifyNetworkInterfaceAttribute", true, func(ctx context.Context) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
		return c.api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eniID),
			Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(attachmentID), DeleteOnTermination: aws.Bool(true)},
		})
	})
	return err
}

// ModifyNetworkInterfaceGroups replaces an ENI's security groups
// (ModifyNetworkInterfaceAttribute with Groups): one call turns a branch ENI kept for reuse
// into one for another set of groups, instead of a delete, a create and an association.
func (c *Client) ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error {
	_, err := call(ctx, c, "ModifyNetworkInterfaceAttribute", true, func(ctx context.Context) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
		return c.api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eniID), Groups: groups,
		})
	})
	return err
}

// DetachNetworkInterface detaches an ENI by its attachment id.
func (c *Client) DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error {
	_, err := call(ctx, c, "DetachNetworkInterface", true, func(ctx context.Context) (*ec2.DetachNetworkInterfaceOutput, error) {
		return c.api.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(attachmentID), Force: aws.Bool(force)})
	})
	return err
}

// DescribeNetworkInterfaces returns every ENI matching f, reading all pages.
func (c *Client) DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error) {
	for _, vs := range f.TagsAnyOf {
		if len(vs) == 0 {
			return nil, nil // one of no values: nothing matches (EC2 refuses a filter without values)
		}
	}
	req := &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: f.IDs, Filters: eniFilters(f)}
	if len(f.IDs) == 0 {
		req.MaxResults = aws.Int32(c.pageSize) // EC2 forbids MaxResults together with ids
	}
	return allPages(ctx, c, "DescribeNetworkInterfaces", ec2.NewDescribeNetworkInterfacesPaginator(c.api, req), enisOf)
}

func enisOf(page *ec2.DescribeNetworkInterfacesOutput) []cloud.NetworkInterface {
	enis := make([]cloud.NetworkInterface, 0, len(page.NetworkInterfaces))
	for i := range page.NetworkInterfaces {
		enis = append(enis, fromENI(&page.NetworkInterfaces[i]))
	}
	return enis
}

// AssignPrivateIPs adds count secondary private IPs to an ENI and returns them.
func (c *Client) AssignPrivateIPs(ctx context.Context, eniID string, count int) ([]string, error) {
	out, err := call(ctx, c, "AssignPrivateIpAddresses", true, func(ctx context.Context) (*ec2.AssignPrivateIpAddressesOutput, error) {
		return c.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
			NetworkInterfaceId: aws.String(eniID), SecondaryPrivateIpAddressCount: aws.Int32(int32(count)), //nolint:gosec // bounded by the IP limit
		})
	})
	if err != nil {
		return nil, err
	}
	ips := make([]string, 0, len(out.AssignedPrivateIpAddresses))
	for _, a := range out.AssignedPrivateIpAddresses {
		ips = append(ips, aws.ToString(a.PrivateIpAddress))
	}
	return ips, nil
}

// UnassignPrivateIPs removes secondary private IPs from an ENI.
func (c *Client) UnassignPrivateIPs(ctx context.Context, eniID string, ips []string) error {
	_, err := call(ctx, c, "UnassignPrivateIpAddresses", true, func(ctx context.Context) (*ec2.UnassignPrivateIpAddressesOutput, error) {
		return c.api.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: ips})
	})
	return err
}

// CreateTags sets tags on resources.
func (c *Client) CreateTags(ctx context.Context, ids []string, tags map[string]string) error {
	_, err := call(ctx, c, "CreateTags", true, func(ctx context.Context) (*ec2.CreateTagsOutput, error) {
		return c.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: toTags(tags)})
	})
	return err
}

func eniFilters(f cloud.NetworkInterfaceFilter) []types.Filter {
	var fs []types.Filter
	add := func(name, value string) {
		if value != "" {
			fs = append(fs, types.Filter{Name: aws.String(name), Values: []string{value}})
		}
	}
	add("attachment.instance-id", f.InstanceID)
	add("subnet-id", f.SubnetID)
	add("interface-type", f.Type)
	for _, k := range sortedKeys(f.Tags) {
		if v := f.Tags[k]; v != "" {
			add("tag:"+k, v)
		} else {
			add("tag-key", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.TagsAnyOf)) {
		fs = append(fs, types.Filter{Name: aws.String("tag:" + k), Values: f.TagsAnyOf[k]})
	}
	return fs
}

func fromENI(n *types.NetworkInterface) cloud.NetworkInterface {
	if n == nil {
		return cloud.NetworkInterface{}
	}
	eni := cloud.NetworkInterface{
		ID: aws.ToString(n.NetworkInterfaceId), Type: string(n.InterfaceType), Status: string(n.Status),
		SubnetID: aws.ToString(n.SubnetId), VPCID: aws.ToString(n.VpcId), MAC: aws.ToString(n.MacAddress),
		PrivateIP: aws.ToString(n.PrivateIpAddress), Description: aws.ToString(n.Description), Tags: fromTags(n.TagSet),
	}
	for _, g := range n.Groups {
		eni.SecurityGroups = append(eni.SecurityGroups, aws.ToString(g.GroupId))
	}
	for _, a := range n.PrivateIpAddresses {
		if !aws.ToBool(a.Primary) {
			eni.SecondaryIPs = append(eni.SecondaryIPs, aws.ToString(a.PrivateIpAddress))
		}
	}
	if a := n.Attachment; a != nil {
		eni.AttachmentID, eni.InstanceID, eni.DeviceIndex = aws.ToString(a.AttachmentId), aws.ToString(a.InstanceId), int(aws.ToInt32(a.DeviceIndex))
	}
	return eni
}

func tagSpecs(rt types.ResourceType, tags map[string]string) []types.TagSpecification {
	if len(tags) == 0 {
		return nil
	}
	return []types.TagSpecification{{ResourceType: rt, Tags: toTags(tags)}}
}

func toTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func fromTags(ts []types.Tag) map[string]string {
	if len(ts) == 0 {
		return nil
	}
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// one returns the single element of a describe result, or a NotFound error.
func one[T any](action, id string, items []T) (T, error) {
	var zero T
	if len(items) != 1 {
		return zero, &cloud.APIError{Op: action, Code: "NotFound", Message: fmt.Sprintf("%s: %d results for %s", action, len(items), id), Kind: cloud.ErrNotFound}
	}
	return items[0], nil
}
