package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/cloud"
)

// TrunkEC2 is what the trunk finder needs of EC2.
type TrunkEC2 interface {
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error)
}

// Trunk is the node's trunk interface once podsg-controller has attached it.
type Trunk struct {
	ENIID   string
	MAC     string
	Link    string       // its name in the node's network namespace
	Gateway netip.Addr   // the router address of its subnet
	Subnet  netip.Prefix //
}

// trunkFinder learns the trunk: from EC2 which ENI it is (once, after the controller attached
// it), then from link events which local interface carries its MAC. Branch pods wait for it.
type trunkFinder struct {
	ec2      TrunkEC2
	instance string
	poll     time.Duration

	mu    sync.Mutex
	trunk *Trunk
	ready chan struct{}
}

func newTrunkFinder(ec2 TrunkEC2, instanceID string, poll time.Duration) *trunkFinder {
	return &trunkFinder{ec2: ec2, instance: instanceID, poll: poll, ready: make(chan struct{})}
}

// Get returns the trunk, or nil while it is not known yet.
func (f *trunkFinder) Get() *Trunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trunk
}

// Ready is closed once the trunk is known.
func (f *trunkFinder) Ready() <-chan struct{} { return f.ready }

// Run finds the trunk and returns; it polls EC2 until the controller has attached one.
func (f *trunkFinder) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("trunk")
	eni, err := f.waitForTrunkENI(ctx)
	if err != nil {
		return err
	}
	subnet, err := f.ec2.DescribeSubnet(ctx, eni.SubnetID)
	if err != nil {
		return fmt.Errorf("describing the trunk's subnet %s: %w", eni.SubnetID, err)
	}
	prefix, err := netip.ParsePrefix(subnet.CIDR)
	if err != nil {
		return fmt.Errorf("trunk subnet CIDR %q: %w", subnet.CIDR, err)
	}
	link, err := waitForLinkWithMAC(ctx, eni.MAC)
	if err != nil {
		return err
	}
	t := &Trunk{ENIID: eni.ID, MAC: eni.MAC, Link: link, Subnet: prefix.Masked(), Gateway: prefix.Masked().Addr().Next()}
	f.mu.Lock()
	f.trunk = t
	close(f.ready)
	f.mu.Unlock()
	log.Info("trunk interface ready", "eni", t.ENIID, "link", t.Link, "mac", t.MAC)
	return nil
}

func (f *trunkFinder) waitForTrunkENI(ctx context.Context) (cloud.NetworkInterface, error) {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		enis, err := f.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{InstanceID: f.instance, Type: cloud.InterfaceTypeTrunk})
		if err == nil && len(enis) > 0 {
			return enis[0], nil
		}
		if err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "looking for the trunk ENI; retrying")
		}
		select {
		case <-ctx.Done():
			return cloud.NetworkInterface{}, ctx.Err()
		case <-t.C:
		}
	}
}

// waitForLinkWithMAC returns the name of the interface with mac, subscribing to link events
// first so that an interface appearing between the listing and the wait is not missed.
func waitForLinkWithMAC(ctx context.Context, mac string) (string, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return "", fmt.Errorf("subscribing to link events: %w", err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return "", fmt.Errorf("listing links: %w", err)
	}
	for _, l := range links {
		if strings.EqualFold(l.Attrs().HardwareAddr.String(), mac) {
			return l.Attrs().Name, nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case u, ok := <-updates:
			if !ok {
				return "", fmt.Errorf("link event subscription ended")
			}
			if u.Link != nil && strings.EqualFold(u.Attrs().HardwareAddr.String(), mac) {
				return u.Attrs().Name, nil
			}
		}
	}
}
