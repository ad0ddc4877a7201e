package agent

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Instance is what the agent learns about its node from the instance metadata service, once
// at start: the per-pod path never asks IMDS again.
type Instance struct {
	ID     string
	Type   string
	Region string
	AZ     string
	// Primary is the primary ENI (device 0): regular pods get its secondary IPs.
	Primary ENI
}

// ENI is one network interface as IMDS describes it.
type ENI struct {
	ID     string
	MAC    string
	Subnet netip.Prefix
	IPs    []netip.Addr // primary first
}

// Metadata is the part of the IMDS client the agent uses.
type Metadata interface {
	GetMetadata(ctx context.Context, in *imds.GetMetadataInput, opts ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

// Discover reads the instance's identity and primary ENI from IMDS.
func Discover(ctx context.Context, md Metadata) (*Instance, error) {
	get := func(path string) (string, error) {
		out, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", fmt.Errorf("reading instance metadata %s: %w", path, err)
		}
		defer func() { _ = out.Content.Close() }()
		data, err := io.ReadAll(out.Content)
		if err != nil {
			return "", fmt.Errorf("reading instance metadata %s: %w", path, err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	var inst Instance
	var err error
	for _, f := range []struct {
		path string
		dst  *string
	}{
		{"instance-id", &inst.ID}, {"instance-type", &inst.Type}, {"placement/region", &inst.Region},
		{"placement/availability-zone", &inst.AZ}, {"mac", &inst.Primary.MAC},
	} {
		if *f.dst, err = get(f.path); err != nil {
			return nil, err
		}
	}
	base := "network/interfaces/macs/" + inst.Primary.MAC + "/"
	if inst.Primary.ID, err = get(base + "interface-id"); err != nil {
		return nil, err
	}
	cidr, err := get(base + "subnet-ipv4-cidr-block")
	if err != nil {
		return nil, err
	}
	if inst.Primary.Subnet, err = netip.ParsePrefix(cidr); err != nil {
		return nil, fmt.Errorf("instance metadata: subnet %q: %w", cidr, err)
	}
	ips, err := get(base + "local-ipv4s")
	if err != nil {
		return nil, err
	}
	for _, s := range strings.Fields(ips) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("instance metadata: local-ipv4s %q: %w", s, err)
		}
		inst.Primary.IPs = append(inst.Primary.IPs, a)
	}
	if len(inst.Primary.IPs) == 0 {
		return nil, fmt.Errorf("instance metadata lists no IPv4 address for the primary interface %s", inst.Primary.ID)
	}
	return &inst, nil
}

// ProviderID is the node's spec.providerID, as the AWS cloud provider writes it.
func (i *Instance) ProviderID() string { return "aws:///" + i.AZ + "/" + i.ID }
