package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/podsg/podsg/internal/cloud"
)

// ErrNoFreeIP means the warm pool is empty right now; the agent is asking EC2 for more, so the
// caller should retry (kubelet does).
var ErrNoFreeIP = errors.New("no free pod IP on this node yet")

// PoolEC2 is what the IP pool needs of EC2.
type PoolEC2 interface {
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	AssignPrivateIPs(ctx context.Context, eniID string, count int) ([]string, error)
}

// Pool hands out the secondary IPs of the node's primary ENI to regular pods and keeps a few
// spare, so that a pod start never waits on EC2. Safe for concurrent use.
type Pool struct {
	ec2   PoolEC2
	eni   string
	limit int // secondary IPs the instance type allows on the ENI
	warm  int // free IPs to keep ready

	mu   sync.Mutex
	free []netip.Addr
	used map[netip.Addr]string // IP -> record key
}

// NewPool returns a pool over eni; limit counts secondary IPs (IPv4 per ENI minus one).
func NewPool(ec2 PoolEC2, eni string, limit, warm int) *Pool {
	return &Pool{ec2: ec2, eni: eni, limit: limit, warm: warm, used: map[netip.Addr]string{}}
}

// Sync learns the ENI's secondary IPs from EC2 and which of them the node's records use;
// every other one is free. Run at start: records are the truth about what pods hold.
func (p *Pool) Sync(ctx context.Context, inUse map[netip.Addr]string) error {
	enis, err := p.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{p.eni}})
	if err != nil {
		return fmt.Errorf("describing the primary ENI %s: %w", p.eni, err)
	}
	if len(enis) != 1 {
		return fmt.Errorf("describing the primary ENI %s: %d results", p.eni, len(enis))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free, p.used = nil, map[netip.Addr]string{}
	for _, s := range enis[0].SecondaryIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		if key, ok := inUse[a]; ok {
			p.used[a] = key
		} else {
			p.free = append(p.free, a)
		}
	}
	slices.SortFunc(p.free, func(a, b netip.Addr) int { return a.Compare(b) })
	return nil
}

// Allocate gives key a free IP.
func (p *Pool) Allocate(key string) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, k := range p.used {
		if k == key { // a retried ADD gets the same address
			return ip, nil
		}
	}
	if len(p.free) == 0 {
		return netip.Addr{}, ErrNoFreeIP
	}
	ip := p.free[0]
	p.free = p.free[1:]
	p.used[ip] = key
	return ip, nil
}

// Release returns ip to the pool.
func (p *Pool) Release(ip netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.used[ip]; ok {
		delete(p.used, ip)
		p.free = append(p.free, ip)
	}
}

// Fill asks EC2 for more secondary IPs until warm are free, within the ENI's limit.
func (p *Pool) Fill(ctx context.Context) error {
	p.mu.Lock()
	want := min(p.warm-len(p.free), p.limit-len(p.free)-len(p.used))
	p.mu.Unlock()
	if want <= 0 {
		return nil
	}
	ips, err := p.ec2.AssignPrivateIPs(ctx, p.eni, want)
	if err != nil {
		return fmt.Errorf("assigning %d secondary IPs to %s: %w", want, p.eni, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			p.free = append(p.free, a)
		}
	}
	return nil
}

// Stats reports free and used counts.
func (p *Pool) Stats() (free, used int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free), len(p.used)
}
