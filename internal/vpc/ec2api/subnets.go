package ec2api

import (
	"context"
	"strconv"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlSubnet struct {
	SubnetID                string   `xml:"subnetId"`
	SubnetArn               string   `xml:"subnetArn"`
	State                   string   `xml:"state"`
	VpcID                   string   `xml:"vpcId"`
	OwnerID                 string   `xml:"ownerId"`
	CidrBlock               string   `xml:"cidrBlock"`
	AvailableIPAddressCount int      `xml:"availableIpAddressCount"`
	AvailabilityZone        string   `xml:"availabilityZone"`
	AvailabilityZoneID      string   `xml:"availabilityZoneId"`
	DefaultForAz            bool     `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool     `xml:"mapPublicIpOnLaunch"`
	AssignIpv6OnCreation    bool     `xml:"assignIpv6AddressOnCreation"`
	TagSet                  []xmlTag `xml:"tagSet>item"`
}

func renderSubnet(tx *state.Tx, s *state.Subnet) xmlSubnet {
	return xmlSubnet{
		SubnetID: s.ID, SubnetArn: arn(tx.Region(), "subnet/"+s.ID), State: "available", VpcID: s.VPCID,
		OwnerID: state.AccountID, CidrBlock: s.CIDR, AvailableIPAddressCount: tx.AvailableIPCount(s),
		AvailabilityZone: s.AvailabilityZone, AvailabilityZoneID: azID(tx.Region(), s.AvailabilityZone),
		TagSet: tagSet(s.Tags),
	}
}

func subnetFields(tx *state.Tx) func(*state.Subnet) query.Fields {
	return func(s *state.Subnet) query.Fields {
		return fieldMap(s.Tags, map[string][]string{
			"subnet-id":                  one(s.ID),
			"vpc-id":                     one(s.VPCID),
			"cidr":                       one(s.CIDR),
			"cidr-block":                 one(s.CIDR),
			"cidrBlock":                  one(s.CIDR),
			"availability-zone":          one(s.AvailabilityZone),
			"availabilityZone":           one(s.AvailabilityZone),
			"availability-zone-id":       one(azID(tx.Region(), s.AvailabilityZone)),
			"available-ip-address-count": one(strconv.Itoa(availableCount(tx, s))),
			"state":                      one("available"),
			"default-for-az":             one("false"),
			"owner-id":                   one(state.AccountID),
		})
	}
}

func availableCount(tx *state.Tx, s *state.Subnet) int {
	if s.CIDR == "" { // the filter-name sample
		return 0
	}
	return tx.AvailableIPCount(s)
}

func (a *API) createSubnet(ctx context.Context, req *query.Request) (query.Response, error) {
	vpcID, err := req.Params.Required("VpcId")
	if err != nil {
		return nil, err
	}
	cidr, err := req.Params.Required("CidrBlock")
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(req, state.ResourceSubnet)
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		Subnet xmlSubnet `xml:"subnet"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		s, err := tx.CreateSubnet(vpcID, cidr, req.Params.String("AvailabilityZone"), tags[state.ResourceSubnet])
		if err == nil {
			resp.Subnet = renderSubnet(tx, s)
		}
		return err
	})
	return resp, err
}

func (a *API) describeSubnets(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		SubnetSet []xmlSubnet `xml:"subnetSet>item"`
		NextToken string      `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[*state.Subnet]{
			idParam: "SubnetId", idPrefix: "subnet", get: tx.Subnet, all: tx.Subnets,
			key: func(s *state.Subnet) string { return s.ID }, fields: subnetFields(tx), sample: &state.Subnet{},
			minPage: 5, maxPage: 1000,
		}
		page, next, err := l.run(req.Params)
		for _, s := range page {
			resp.SubnetSet = append(resp.SubnetSet, renderSubnet(tx, s))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}

func (a *API) deleteSubnet(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("SubnetId")
	if err != nil {
		return nil, err
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DeleteSubnet(id) })
	return &query.ReturnResponse{Return: true}, err
}
