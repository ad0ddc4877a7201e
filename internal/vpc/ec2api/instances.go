package ec2api

import (
	"context"
	"slices"
	"strconv"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlInstance struct {
	InstanceID         string              `xml:"instanceId"`
	ImageID            string              `xml:"imageId"`
	InstanceState      xmlInstState        `xml:"instanceState"`
	PrivateDNSName     string              `xml:"privateDnsName"`
	DNSName            string              `xml:"dnsName"`
	AmiLaunchIndex     int                 `xml:"amiLaunchIndex"`
	InstanceType       string              `xml:"instanceType"`
	LaunchTime         string              `xml:"launchTime"`
	Placement          xmlPlacement        `xml:"placement"`
	Monitoring         xmlState            `xml:"monitoring"`
	SubnetID           string              `xml:"subnetId"`
	VpcID              string              `xml:"vpcId"`
	PrivateIPAddress   string              `xml:"privateIpAddress"`
	SourceDestCheck    bool                `xml:"sourceDestCheck"`
	GroupSet           []xmlGroup          `xml:"groupSet>item"`
	Architecture       string              `xml:"architecture"`
	RootDeviceType     string              `xml:"rootDeviceType"`
	RootDeviceName     string              `xml:"rootDeviceName"`
	VirtualizationType string              `xml:"virtualizationType"`
	ClientToken        string              `xml:"clientToken"`
	TagSet             []xmlTag            `xml:"tagSet>item"`
	Hypervisor         string              `xml:"hypervisor"`
	NetworkInterfaces  []xmlInstENI        `xml:"networkInterfaceSet>item"`
	EbsOptimized       bool                `xml:"ebsOptimized"`
	EnaSupport         bool                `xml:"enaSupport"`
	MetadataOptions    *xmlMetadataOptions `xml:"metadataOptions"`
	IamInstanceProfile *xmlIAMProfile      `xml:"iamInstanceProfile"`
}

type xmlInstState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	GroupName        string `xml:"groupName"`
	Tenancy          string `xml:"tenancy"`
}

// xmlInstENI is InstanceNetworkInterface: an ENI as seen inside an instance.
type xmlInstENI struct {
	NetworkInterfaceID string         `xml:"networkInterfaceId"`
	SubnetID           string         `xml:"subnetId"`
	VpcID              string         `xml:"vpcId"`
	Description        string         `xml:"description"`
	OwnerID            string         `xml:"ownerId"`
	Status             string         `xml:"status"`
	MacAddress         string         `xml:"macAddress"`
	PrivateIPAddress   string         `xml:"privateIpAddress"`
	PrivateDNSName     string         `xml:"privateDnsName"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	GroupSet           []xmlGroup     `xml:"groupSet>item"`
	Attachment         *xmlAttachment `xml:"attachment"`
	PrivateIPs         []xmlPrivateIP `xml:"privateIpAddressesSet>item"`
	InterfaceType      string         `xml:"interfaceType"`
}

// stateCodes are EC2's instance state codes.
var stateCodes = map[string]int{"pending": 0, state.InstanceRunning: 16, "shutting-down": 32, state.InstanceTerminated: 48}

func renderInstance(tx *state.Tx, inst *state.Instance) xmlInstance {
	x := xmlInstance{
		InstanceID: inst.ID, ImageID: inst.ImageID,
		InstanceState:  xmlInstState{Code: stateCodes[inst.State], Name: inst.State},
		AmiLaunchIndex: inst.LaunchIndex, InstanceType: inst.Type, LaunchTime: query.Time(inst.LaunchTime),
		Placement:  xmlPlacement{AvailabilityZone: inst.AvailabilityZone, Tenancy: "default"},
		Monitoring: xmlState{"disabled"}, Architecture: "x86_64", RootDeviceType: "ebs", RootDeviceName: "/dev/xvda",
		VirtualizationType: "hvm", ClientToken: inst.ClientToken, TagSet: tagSet(inst.Tags), Hypervisor: "xen",
		EnaSupport: true, SourceDestCheck: true, MetadataOptions: renderMetadataOptions(inst.MetadataOptions, "applied"),
	}
	if inst.State == state.InstanceTerminated {
		return x
	}
	x.IamInstanceProfile = renderIAMProfile(inst.IAMProfile)
	x.SubnetID, x.VpcID, x.PrivateIPAddress = inst.SubnetID, inst.VPCID, inst.PrivateIPAddress
	x.PrivateDNSName = state.PrivateDNSName(tx.Region(), inst.PrivateIPAddress)
	for _, e := range tx.InstanceInterfaces(inst.ID) {
		if e.Attachment.DeviceIndex == 0 {
			x.GroupSet, x.SourceDestCheck = groupSet(tx, e.Groups), e.SourceDestCheck
		}
		x.NetworkInterfaces = append(x.NetworkInterfaces, xmlInstENI{
			NetworkInterfaceID: e.ID, SubnetID: e.SubnetID, VpcID: e.VPCID, Description: e.Description,
			OwnerID: state.AccountID, Status: e.Status(), MacAddress: e.MAC, PrivateIPAddress: e.PrivateIPs[0],
			PrivateDNSName:  state.PrivateDNSName(tx.Region(), e.PrivateIPs[0]),
			SourceDestCheck: e.SourceDestCheck, GroupSet: groupSet(tx, e.Groups),
			Attachment: renderAttachment(e.Attachment, false), PrivateIPs: privateIPs(tx.Region(), e),
			InterfaceType: e.InterfaceType,
		})
	}
	return x
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	GroupSet      []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

// reservations groups instances by reservation, keeping their order.
func reservations(tx *state.Tx, insts []*state.Instance) []xmlReservation {
	var out []xmlReservation
	index := map[string]int{}
	for _, inst := range insts {
		i, ok := index[inst.ReservationID]
		if !ok {
			out = append(out, xmlReservation{ReservationID: inst.ReservationID, OwnerID: state.AccountID})
			i = len(out) - 1
			index[inst.ReservationID] = i
		}
		out[i].Instances = append(out[i].Instances, renderInstance(tx, inst))
	}
	return out
}

func instanceFields(tx *state.Tx) func(*state.Instance) query.Fields {
	return func(inst *state.Instance) query.Fields {
		var ips, enis []string
		for _, e := range tx.InstanceInterfaces(inst.ID) {
			ips = append(ips, e.PrivateIPs...)
			enis = append(enis, e.ID)
		}
		return fieldMap(inst.Tags, map[string][]string{
			"instance-id":         one(inst.ID),
			"instance-state-name": one(inst.State),
			"instance-state-code": one(strconv.Itoa(stateCodes[inst.State])),
			"instance-type":       one(inst.Type),
			"image-id":            one(inst.ImageID),
			"subnet-id":           one(inst.SubnetID),
			"vpc-id":              one(inst.VPCID),
			"availability-zone":   one(inst.AvailabilityZone),
			"reservation-id":      one(inst.ReservationID),
			"private-ip-address":  one(inst.PrivateIPAddress),
			"private-dns-name":    one(dnsName(tx, inst)),
			"client-token":        one(inst.ClientToken),
			"network-interface.addresses.private-ip-address": ips,
			"network-interface.network-interface-id":         enis,
			"owner-id":                                       one(state.AccountID),
		})
	}
}

func dnsName(tx *state.Tx, inst *state.Instance) string {
	if inst.PrivateIPAddress == "" {
		return ""
	}
	return state.PrivateDNSName(tx.Region(), inst.PrivateIPAddress)
}

func (a *API) runInstances(ctx context.Context, req *query.Request) (query.Response, error) {
	in, err := parseRun(req)
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		xmlReservation
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		insts, err := tx.RunInstances(in)
		if err != nil {
			return err
		}
		if rs := reservations(tx, insts); len(rs) > 0 {
			resp.xmlReservation = rs[0]
		}
		return nil
	})
	return resp, err
}

func parseRun(req *query.Request) (state.RunInput, error) {
	p := req.Params
	image, err := p.Required("ImageId")
	if err != nil {
		return state.RunInput{}, err
	}
	minCount, err := requiredInt(p, "MinCount", 1, 1000)
	if err != nil {
		return state.RunInput{}, err
	}
	maxCount, err := requiredInt(p, "MaxCount", 1, 1000)
	if err != nil {
		return state.RunInput{}, err
	}
	tags, err := tagSpecs(req, state.ResourceInstance, state.ResourceENI, "volume")
	if err != nil {
		return state.RunInput{}, err
	}
	typ := p.String("InstanceType")
	if typ == "" {
		typ = "m5.large"
	}
	in := state.RunInput{
		ImageID: image, InstanceType: typ, SubnetID: p.String("SubnetId"), GroupIDs: p.List("SecurityGroupId"),
		PrivateIP: p.String("PrivateIpAddress"), MinCount: minCount, MaxCount: maxCount,
		InstanceTags: tags[state.ResourceInstance], ENITags: tags[state.ResourceENI], Idempotency: idempotency(req),
	}
	if in.MetadataOptions, err = parseMetadataOptions(p, "MetadataOptions."); err != nil {
		return in, err
	}
	if in.IAMProfile, err = parseProfileRef(p); err != nil {
		return in, err
	}
	if len(p.List("SecurityGroup")) > 0 {
		return in, apierr.New(apierr.CodeInvalidParameterCombination, "The parameter groupName cannot be used with the parameter subnet")
	}
	for _, m := range p.Members("NetworkInterface") {
		spec, err := parseInterfaceSpec(m)
		if err != nil {
			return in, err
		}
		in.Interfaces = append(in.Interfaces, spec)
	}
	return in, nil
}

func parseInterfaceSpec(m query.Params) (state.InterfaceSpec, error) {
	idx, err := m.IntIn("DeviceIndex", 0, 0, 127)
	if err != nil {
		return state.InterfaceSpec{}, err
	}
	if !m.Has("DeviceIndex") {
		return state.InterfaceSpec{}, apierr.Missing("NetworkInterface.DeviceIndex")
	}
	count, err := m.IntIn("SecondaryPrivateIpAddressCount", 0, 0, 49)
	if err != nil {
		return state.InterfaceSpec{}, err
	}
	spec := state.InterfaceSpec{
		DeviceIndex: int(idx), NetworkInterfaceID: m.String("NetworkInterfaceId"), SubnetID: m.String("SubnetId"),
		GroupIDs: m.List("SecurityGroupId"), PrivateIP: m.String("PrivateIpAddress"), SecondaryCount: int(count),
		Description: m.String("Description"), InterfaceType: m.String("InterfaceType"),
	}
	if v, ok, err := m.Bool("DeleteOnTermination"); err != nil {
		return spec, err
	} else if ok {
		spec.DeleteOnTermination = &v
	}
	return spec, nil
}

func (a *API) describeInstances(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		Reservations []xmlReservation `xml:"reservationSet>item"`
		NextToken    string           `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		visible := func(inst *state.Instance) bool { return !inst.Expired(tx.Now()) }
		l := listing[*state.Instance]{
			idParam: "InstanceId", idPrefix: "i",
			get: func(id string) (*state.Instance, bool) {
				inst, ok := tx.Instance(id)
				return inst, ok && visible(inst)
			},
			all: func() []*state.Instance {
				return slices.DeleteFunc(tx.Instances(), func(i *state.Instance) bool { return !visible(i) })
			},
			key:    func(i *state.Instance) string { return i.ID },
			fields: instanceFields(tx), sample: &state.Instance{}, minPage: 5, maxPage: 1000, ids: tx.InstanceIDs,
			narrow: func(filters []query.Filter) ([]string, bool) {
				return narrowBy(filters, func(name, value string) (int, func() []string, bool) {
					if name != "instance-id" {
						return 0, nil, false
					}
					// A missing instance is left out by the scan's get.
					return 1, func() []string { return []string{value} }, true
				})
			},
		}
		page, next, err := l.run(req.Params)
		resp.Reservations, resp.NextToken = reservations(tx, page), next
		return err
	})
	return resp, err
}

type xmlStateChange struct {
	InstanceID    string       `xml:"instanceId"`
	CurrentState  xmlInstState `xml:"currentState"`
	PreviousState xmlInstState `xml:"previousState"`
}

func (a *API) terminateInstances(ctx context.Context, req *query.Request) (query.Response, error) {
	ids := req.Params.List("InstanceId")
	if len(ids) == 0 {
		return nil, apierr.Missing("InstanceId")
	}
	resp := &struct {
		query.Envelope
		Instances []xmlStateChange `xml:"instancesSet>item"`
	}{}
	err := a.mutate(ctx, req, func(tx *state.Tx) error {
		changes, err := tx.TerminateInstances(ids)
		for _, c := range changes {
			resp.Instances = append(resp.Instances, xmlStateChange{
				InstanceID:    c.InstanceID,
				CurrentState:  xmlInstState{Code: stateCodes[c.Current], Name: c.Current},
				PreviousState: xmlInstState{Code: stateCodes[c.Previous], Name: c.Previous},
			})
		}
		return err
	})
	return resp, err
}
