package ec2api

import (
	"context"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlENI struct {
	NetworkInterfaceID string         `xml:"networkInterfaceId"`
	SubnetID           string         `xml:"subnetId"`
	VpcID              string         `xml:"vpcId"`
	AvailabilityZone   string         `xml:"availabilityZone"`
	AvailabilityZoneID string         `xml:"availabilityZoneId"`
	Description        string         `xml:"description"`
	OwnerID            string         `xml:"ownerId"`
	RequesterManaged   bool           `xml:"requesterManaged"`
	Status             string         `xml:"status"`
	MacAddress         string         `xml:"macAddress"`
	PrivateIPAddress   string         `xml:"privateIpAddress"`
	PrivateDNSName     string         `xml:"privateDnsName"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	GroupSet           []xmlGroup     `xml:"groupSet>item"`
	Attachment         *xmlAttachment `xml:"attachment,omitempty"`
	TagSet             []xmlTag       `xml:"tagSet>item"`
	PrivateIPs         []xmlPrivateIP `xml:"privateIpAddressesSet>item"`
	InterfaceType      string         `xml:"interfaceType"`
}

type xmlAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlPrivateIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
	PrivateDNSName   string `xml:"privateDnsName"`
	Primary          bool   `xml:"primary"`
}

func renderAttachment(a *state.Attachment, withInstance bool) *xmlAttachment {
	if a == nil {
		return nil
	}
	x := &xmlAttachment{AttachmentID: a.ID, DeviceIndex: a.DeviceIndex, Status: "attached",
		AttachTime: query.Time(a.AttachTime), DeleteOnTermination: a.DeleteOnTermination}
	if withInstance {
		x.InstanceID, x.InstanceOwnerID = a.InstanceID, state.AccountID
	}
	return x
}

func privateIPs(region string, e *state.ENI) []xmlPrivateIP {
	out := make([]xmlPrivateIP, len(e.PrivateIPs))
	for i, ip := range e.PrivateIPs {
		out[i] = xmlPrivateIP{PrivateIPAddress: ip, PrivateDNSName: state.PrivateDNSName(region, ip), Primary: i == 0}
	}
	return out
}

func renderENI(tx *state.Tx, e *state.ENI) xmlENI {
	return xmlENI{
		NetworkInterfaceID: e.ID, SubnetID: e.SubnetID, VpcID: e.VPCID,
		AvailabilityZone: e.AvailabilityZone, AvailabilityZoneID: azID(tx.Region(), e.AvailabilityZone),
		Description: e.Description, OwnerID: state.AccountID, Status: e.Status(), MacAddress: e.MAC,
		PrivateIPAddress: e.PrivateIPs[0], PrivateDNSName: state.PrivateDNSName(tx.Region(), e.PrivateIPs[0]),
		SourceDestCheck: e.SourceDestCheck, GroupSet: groupSet(tx, e.Groups),
		Attachment: renderAttachment(e.Attachment, true), TagSet: tagSet(e.Tags),
		PrivateIPs: privateIPs(tx.Region(), e), InterfaceType: e.InterfaceType,
	}
}

// eniFields is a switch rather than a map: DescribeNetworkInterfaces with
// filters runs it for every ENI, and there may be tens of thousands.
func eniFields(tx *state.Tx) func(*state.ENI) query.Fields {
	return func(e *state.ENI) query.Fields {
		return func(name string) ([]string, bool) {
			if v, ok := eniScalarField(e, name); ok {
				return one(v), true
			}
			switch name {
			case "private-ip-address", "addresses.private-ip-address":
				return e.PrivateIPs, true
			case "group-id":
				return e.Groups, true
			case "group-name":
				return groupNames(tx, e.Groups), true
			case "attachment.instance-id", "attachment.attachment-id", "attachment.status",
				"attachment.device-index", "attachment.delete-on-termination":
				return attachmentField(e.Attachment, name), true
			}
			return query.TagFields(e.Tags, name)
		}
	}
}

// eniNarrow answers the filters that name an ENI's instance, subnet, interface type or a tag
// with literal values from the state's indexes. The controllers of a cluster of thousands of
// nodes filter by tag and by instance, and read their trunks by type: a cluster's tag
// selects nearly every ENI, interface-type=trunk one in fifty.
func eniNarrow(tx *state.Tx) func([]query.Filter) ([]string, bool) {
	return func(filters []query.Filter) ([]string, bool) {
		return narrowBy(filters, func(name, value string) (int, func() []string, bool) {
			index, key := state.ENIsByInstance, ""
			switch {
			case name == "attachment.instance-id":
			case name == "subnet-id":
				index = state.ENIsBySubnet
			case name == "interface-type":
				index = state.ENIsByType
			case strings.HasPrefix(name, "tag:"):
				index, key = state.ENIsByTag, strings.TrimPrefix(name, "tag:")
			default:
				return 0, nil, false
			}
			n, ids := tx.ENIsBy(index, key, value)
			return n, ids, true
		})
	}
}

// eniScalarField is the filter field name of e that has exactly one value, if it is one.
func eniScalarField(e *state.ENI, name string) (string, bool) {
	switch name {
	case "network-interface-id":
		return e.ID, true
	case "subnet-id":
		return e.SubnetID, true
	case "vpc-id":
		return e.VPCID, true
	case "availability-zone":
		return e.AvailabilityZone, true
	case "description":
		return e.Description, true
	case "interface-type":
		return e.InterfaceType, true
	case "status":
		return e.Status(), true
	case "mac-address":
		return e.MAC, true
	case "owner-id":
		return state.AccountID, true
	case "requester-managed":
		return "false", true
	case "source-dest-check":
		return strconv.FormatBool(e.SourceDestCheck), true
	}
	return "", false
}

func groupNames(tx *state.Tx, ids []string) []string {
	var out []string
	for _, g := range groupSet(tx, ids) {
		out = append(out, g.GroupName)
	}
	return out
}

func attachmentField(a *state.Attachment, name string) []string {
	if a == nil {
		if name == "attachment.status" {
			return one("detached")
		}
		return nil
	}
	switch name {
	case "attachment.instance-id":
		return one(a.InstanceID)
	case "attachment.attachment-id":
		return one(a.ID)
	case "attachment.status":
		return one("attached")
	case "attachment.device-index":
		return one(strconv.Itoa(a.DeviceIndex))
	}
	return one(strconv.FormatBool(a.DeleteOnTermination))
}

func (a *API) createNetworkInterface(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	subnet, err := p.Required("SubnetId")
	if err != nil {
		return nil, err
	}
	count, err := p.IntIn("SecondaryPrivateIpAddressCount", 0, 0, 49)
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(req, state.ResourceENI)
	if err != nil {
		return nil, err
	}
	in := state.CreateENIInput{
		SubnetID: subnet, Description: p.String("Description"), GroupIDs: p.List("SecurityGroupId"),
		PrivateIP: p.String("PrivateIpAddress"), SecondaryCount: int(count), InterfaceType: p.String("InterfaceType"),
		Tags: tags[state.ResourceENI], Idempotency: idempotency(req),
	}
	for _, m := range p.Members("PrivateIpAddresses") {
		if primary, _, _ := m.Bool("Primary"); primary && in.PrivateIP == "" {
			in.PrivateIP = m.String("PrivateIpAddress")
		} else {
			in.ExtraIPs = append(in.ExtraIPs, m.String("PrivateIpAddress"))
		}
	}
	resp := &struct {
		query.Envelope
		NetworkInterface xmlENI `xml:"networkInterface"`
		ClientToken      string `xml:"clientToken,omitempty"`
	}{ClientToken: in.Idempotency.Token}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		e, err := tx.CreateNetworkInterface(in)
		if err == nil {
			resp.NetworkInterface = renderENI(tx, e)
		}
		return err
	})
	return resp, err
}

func (a *API) deleteNetworkInterface(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DeleteNetworkInterface(id) })
	return &query.ReturnResponse{Return: true}, err
}

func (a *API) describeNetworkInterfaces(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		NetworkInterfaceSet []xmlENI `xml:"networkInterfaceSet>item"`
		NextToken           string   `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[*state.ENI]{
			idParam: "NetworkInterfaceId", idPrefix: "eni", get: tx.NetworkInterface, all: tx.NetworkInterfaces,
			key: func(e *state.ENI) string { return e.ID }, fields: eniFields(tx), sample: &state.ENI{},
			minPage: 5, maxPage: 1000, ids: tx.NetworkInterfaceIDs, narrow: eniNarrow(tx),
		}
		page, next, err := l.run(req.Params)
		resp.NetworkInterfaceSet = make([]xmlENI, 0, len(page))
		for _, e := range page {
			resp.NetworkInterfaceSet = append(resp.NetworkInterfaceSet, renderENI(tx, e))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}

func (a *API) attachNetworkInterface(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	eni, err := p.Required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	inst, err := p.Required("InstanceId")
	if err != nil {
		return nil, err
	}
	idx, err := requiredInt(p, "DeviceIndex", 0, 127)
	if err != nil {
		return nil, err
	}
	if card, _ := p.IntIn("NetworkCardIndex", 0, 0, 0); card != 0 {
		return nil, apierr.InvalidValue("Only network card index 0 is supported.")
	}
	resp := &struct {
		query.Envelope
		AttachmentID     string `xml:"attachmentId"`
		NetworkCardIndex int    `xml:"networkCardIndex"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		att, err := tx.AttachNetworkInterface(eni, inst, idx)
		if err == nil {
			resp.AttachmentID = att.ID
		}
		return err
	})
	return resp, err
}

func (a *API) detachNetworkInterface(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("AttachmentId")
	if err != nil {
		return nil, err
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DetachNetworkInterface(id) })
	return &query.ReturnResponse{Return: true}, err
}

func (a *API) modifyNetworkInterfaceAttribute(ctx context.Context, req *query.Request) (query.Response, error) {
	in, err := parseModify(req.Params)
	if err != nil {
		return nil, err
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.ModifyNetworkInterfaceAttribute(in) })
	return &query.ReturnResponse{Return: true}, err
}

// parseModify accepts exactly one attribute, as EC2 does.
func parseModify(p query.Params) (state.ModifyENIInput, error) {
	id, err := p.Required("NetworkInterfaceId")
	if err != nil {
		return state.ModifyENIInput{}, err
	}
	in := state.ModifyENIInput{ID: id}
	n := 0
	if groups := p.List("SecurityGroupId"); len(groups) > 0 {
		in.GroupIDs, n = groups, n+1
	}
	if p.Has("SourceDestCheck.Value") {
		v, _, err := p.Bool("SourceDestCheck.Value")
		if err != nil {
			return in, err
		}
		in.SourceDestCheck, n = &v, n+1
	}
	if p.Has("Description.Value") {
		v := p.String("Description.Value")
		in.Description, n = &v, n+1
	}
	if p.Has("Attachment.AttachmentId") {
		v, _, err := p.Bool("Attachment.DeleteOnTermination")
		if err != nil {
			return in, err
		}
		in.AttachmentID, in.DeleteOnTermination, n = p.String("Attachment.AttachmentId"), &v, n+1
	}
	switch {
	case n == 0:
		return in, apierr.Missing("SecurityGroupId, SourceDestCheck, Description or Attachment")
	case n > 1:
		return in, apierr.Combination("Fields for multiple attribute types specified: only one attribute can be modified at a time")
	}
	return in, nil
}

func (a *API) assignPrivateIPAddresses(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	id, err := p.Required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	ips := p.List("PrivateIpAddress")
	count, err := p.IntIn("SecondaryPrivateIpAddressCount", 0, 1, 49)
	if err != nil {
		return nil, err
	}
	switch {
	case len(ips) > 0 && count > 0:
		return nil, apierr.Combination("Either PrivateIpAddress or SecondaryPrivateIpAddressCount may be specified, not both")
	case len(ips) == 0 && count == 0:
		return nil, apierr.Missing("PrivateIpAddress or SecondaryPrivateIpAddressCount")
	}
	reassign, _, err := p.Bool("AllowReassignment")
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		NetworkInterfaceID string        `xml:"networkInterfaceId"`
		Assigned           []xmlAssigned `xml:"assignedPrivateIpAddressesSet>item"`
	}{NetworkInterfaceID: id}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		added, err := tx.AssignPrivateIPs(id, ips, int(count), reassign)
		for _, ip := range added {
			resp.Assigned = append(resp.Assigned, xmlAssigned{ip})
		}
		return err
	})
	return resp, err
}

type xmlAssigned struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

func (a *API) unassignPrivateIPAddresses(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	ips := req.Params.List("PrivateIpAddress")
	if len(ips) == 0 {
		return nil, apierr.Missing("PrivateIpAddress")
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.UnassignPrivateIPs(id, ips) })
	return &query.ReturnResponse{Return: true}, err
}
