package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/podsg/podsg/internal/cloud"
)

// ErrNoFreeIP means the warm pool is empty right now; the agent is asking EC2 for more, so the
// caller should retry (kubelet does).
var ErrNoFreeIP = errors.New("no free pod IP on this node yet")

// errNodeFull means every ENI slot the pool may use is taken and every ENI holds all the IPs
// its instance type allows: no regular pod fits until one leaves.
var errNodeFull = errors.New("this node has no room for another pod IP: every ENI slot and every IP of the instance type is in use")

// PoolEC2 is what the IP pool needs of EC2.
type PoolEC2 interface {
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error)
	AssignPrivateIPs(ctx context.Context, eniID string, count int) ([]string, error)
	UnassignPrivateIPs(ctx context.Context, eniID string, ips []string) error
	CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error)
	AttachNetworkInterface(ctx context.Context, eniID, instanceID string, deviceIndex int) (string, error)
	SetDeleteOnTermination(ctx context.Context, eniID, attachmentID string) error
	// ENIFreer detaches and deletes an ENI the pool gives back (cloud.FreeENI).
	cloud.ENIFreer
}

// ENILink is the node's side of a secondary ENI: traffic from the pods holding its IPs must
// leave through it (EC2 drops packets whose source address is not the sending ENI's), so it
// gets its own route table.
type ENILink struct {
	ENIID     string
	MAC       string
	PrimaryIP netip.Addr
	Subnet    netip.Prefix
	Table     int
}

// ENILinks configures secondary ENIs on the node (netlink in production).
type ENILinks interface {
	// Setup waits until the interface with l.MAC exists, brings it up with l.PrimaryIP, and
	// gives l.Table a default route through it to the subnet's router. Idempotent; returns
	// the interface's name.
	Setup(ctx context.Context, l ENILink) (string, error)
}

// PoolConfig sizes the pool.
type PoolConfig struct {
	InstanceID string
	NodeName   string
	// MaxENIs is the instance type's ENI limit, the primary and the trunk included.
	MaxENIs int
	// ReserveTrunkSlot keeps one ENI slot free for the trunk podsg-controller attaches
	// (--enable-pod-eni), until the trunk is there.
	ReserveTrunkSlot bool
	// IPsPerENI is how many secondary IPs one ENI may hold (the type's IPv4 per ENI minus the
	// ENI's own primary address).
	IPsPerENI int
	// Targets say how many IPs to keep ready, and above what to give them back.
	Targets Targets
	// MinAge keeps an ENI that got IPs (or was found at start) less than this long ago from
	// giving any back, so that a burst's IPs are not returned between two waves of pods.
	// AWS's VPC CNI keeps a new ENI at least a minute.
	MinAge time.Duration
	// TrimInterval is the least time between two trims, so that the pool does not hammer
	// EC2 when pods come and go (AWS's VPC CNI: 30 s).
	TrimInterval time.Duration
	// LinkWait bounds how long Fill waits for a newly attached ENI's interface to appear.
	LinkWait time.Duration
	// Cooldown keeps a released IP from the next pod for a while, so that traffic still
	// addressed to the old pod (clients with stale endpoints, conntrack entries) does not
	// reach a stranger. AWS's VPC CNI waits 30 s (IP_COOLDOWN_PERIOD).
	Cooldown time.Duration
	// Clock is the pool's time source; nil means the real clock.
	Clock clock.PassiveClock
}

// Lease is a pod IP and where it lives.
type Lease struct {
	IP    netip.Addr
	ENIID string
	// Table routes traffic from the IP out of its ENI: 0 for the primary ENI (the main
	// table), device index + 1 for a secondary ENI, as AWS's VPC CNI numbers them.
	Table int
}

// poolENI is one ENI whose secondary IPs the pool hands out.
type poolENI struct {
	id, mac      string
	attachmentID string
	device       int
	primaryIP    netip.Addr
	subnet       netip.Prefix
	assigned     int  // secondary IPs EC2 has assigned to it (leaving ones included)
	linked       bool // the node side is set up (always true for the primary ENI)
	// ours: an agent created it for this instance (tagged so); the only ENIs Trim deletes.
	ours    bool
	grewAt  time.Time // when it last got IPs, or when this run found it
	free    []netip.Addr
	pending []netip.Addr // assigned, waiting for the link before pods may use them
	// leaving IPs are being unassigned: out of free, so no pod gets them, but possibly still
	// the ENI's in EC2 until the call's outcome is known.
	leaving []netip.Addr
}

func (e *poolENI) table() int {
	if e.device == 0 {
		return 0
	}
	return e.device + 1
}

// Pool hands out secondary IPs of the node's ENIs to regular pods and keeps a few spare, so
// that a pod start never waits on EC2. It fills the primary ENI first, then attaches more
// ENIs within the instance type's limits, as AWS's VPC CNI does. Safe for concurrent use.
type Pool struct {
	ec2   PoolEC2
	links ENILinks
	cfg   PoolConfig

	fillMu sync.Mutex // one Fill at a time: it reads and then changes EC2 state

	mu      sync.Mutex
	primary cloud.NetworkInterface // subnet and security groups new ENIs copy
	enis    []*poolENI             // by device index
	used    map[netip.Addr]usedIP
	cooling map[netip.Addr]time.Time // released IPs (still in their ENI's free list) and until when they rest
	full    bool                     // no ENI slot left: Fill stops asking EC2 for more
	trim    trimState
}

type usedIP struct {
	key string // record key
	eni *poolENI
}

// NewPool returns an empty pool; Sync loads it.
func NewPool(ec2 PoolEC2, links ENILinks, cfg PoolConfig) *Pool {
	if cfg.LinkWait <= 0 {
		cfg.LinkWait = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MinAge <= 0 {
		cfg.MinAge = time.Minute
	}
	if cfg.TrimInterval <= 0 {
		cfg.TrimInterval = 30 * time.Second
	}
	return &Pool{ec2: ec2, links: links, cfg: cfg, used: map[netip.Addr]usedIP{}, cooling: map[netip.Addr]time.Time{}}
}

// Sync learns the instance's ENIs and their IPs from EC2 and which of them the node's records
// use; every other one is free. It also deletes ENIs an earlier run created but never
// attached (a crash in between). Run at start: records are the truth about what pods hold.
func (p *Pool) Sync(ctx context.Context, inUse map[netip.Addr]string) error {
	if err := p.deleteUnattached(ctx); err != nil {
		return err
	}
	attached, err := p.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{InstanceID: p.cfg.InstanceID})
	if err != nil {
		return fmt.Errorf("describing the ENIs of %s: %w", p.cfg.InstanceID, err)
	}
	slices.SortFunc(attached, func(a, b cloud.NetworkInterface) int { return a.DeviceIndex - b.DeviceIndex })
	var enis []*poolENI
	var primary cloud.NetworkInterface
	for _, n := range attached {
		if n.Type != cloud.InterfaceTypeInterface && n.Type != "" || n.Tags[cloud.TagNoManage] == "true" {
			continue
		}
		e, err := p.fromCloud(ctx, n)
		if err != nil {
			return err
		}
		if n.DeviceIndex == 0 {
			primary = n
		}
		enis = append(enis, e)
	}
	if primary.ID == "" {
		return fmt.Errorf("instance %s has no primary ENI the pool may use", p.cfg.InstanceID)
	}
	p.mu.Lock()
	// Cooldowns are not carried over a restart: an IP released within Cooldown before it
	// may go to the next pod at once. Rare enough not to persist them.
	p.primary, p.enis, p.used, p.cooling, p.full = primary, enis, map[netip.Addr]usedIP{}, map[netip.Addr]time.Time{}, false
	for _, e := range enis {
		p.markUsed(e, inUse)
	}
	p.mu.Unlock()
	for _, e := range enis {
		if !e.linked {
			// Pods already on it keep working; its free IPs wait until Fill retries.
			if err := p.link(ctx, e); err != nil {
				logr.FromContextOrDiscard(ctx).Error(err, "secondary ENI not ready; its free IPs wait")
			}
		}
	}
	return nil
}

// markUsed moves e's IPs that records hold from free to used; the rest of an ENI not set up
// yet wait as pending. Callers hold p.mu.
func (p *Pool) markUsed(e *poolENI, inUse map[netip.Addr]string) {
	var free []netip.Addr
	for _, a := range e.free {
		if key, ok := inUse[a]; ok {
			p.used[a] = usedIP{key: key, eni: e}
		} else {
			free = append(free, a)
		}
	}
	e.free = free
	if !e.linked {
		e.pending, e.free = e.free, nil
	}
}

// fromCloud turns a described ENI into a pool ENI with all its secondary IPs free.
func (p *Pool) fromCloud(ctx context.Context, n cloud.NetworkInterface) (*poolENI, error) {
	e := &poolENI{id: n.ID, mac: n.MAC, attachmentID: n.AttachmentID, device: n.DeviceIndex, assigned: len(n.SecondaryIPs),
		linked: n.DeviceIndex == 0, ours: n.Tags[cloud.TagInstance] == p.cfg.InstanceID, grewAt: p.cfg.Clock.Now()}
	var err error
	if e.primaryIP, err = netip.ParseAddr(n.PrivateIP); err != nil {
		return nil, fmt.Errorf("ENI %s: primary address %q: %w", n.ID, n.PrivateIP, err)
	}
	if e.device != 0 {
		sn, err := p.ec2.DescribeSubnet(ctx, n.SubnetID)
		if err != nil {
			return nil, fmt.Errorf("describing the subnet %s of ENI %s: %w", n.SubnetID, n.ID, err)
		}
		if e.subnet, err = netip.ParsePrefix(sn.CIDR); err != nil {
			return nil, fmt.Errorf("subnet %s: CIDR %q: %w", sn.ID, sn.CIDR, err)
		}
	}
	for _, s := range n.SecondaryIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			e.free = append(e.free, a)
		}
	}
	slices.SortFunc(e.free, netip.Addr.Compare)
	return e, nil
}

// deleteUnattached removes ENIs tagged for this instance that are not attached: created by an
// agent that stopped before attaching them. Nothing else creates ENIs with that tag, and no
// other Fill runs yet, so none of them is about to be attached.
func (p *Pool) deleteUnattached(ctx context.Context) error {
	mine, err := p.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagInstance: p.cfg.InstanceID}})
	if err != nil {
		return fmt.Errorf("looking for unattached pool ENIs of %s: %w", p.cfg.InstanceID, err)
	}
	for _, n := range mine {
		if n.AttachmentID != "" || n.Status != "available" {
			continue
		}
		if err := p.ec2.DeleteNetworkInterface(ctx, n.ID); cloud.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting ENI %s, created for pod IPs but never attached: %w", n.ID, err)
		}
		logr.FromContextOrDiscard(ctx).Info("deleted an ENI an earlier run created but did not attach", "eni", n.ID)
	}
	return nil
}

// link sets up the node side of a secondary ENI and releases its pending IPs to pods.
func (p *Pool) link(ctx context.Context, e *poolENI) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.LinkWait)
	defer cancel()
	name, err := p.links.Setup(ctx, ENILink{ENIID: e.id, MAC: e.mac, PrimaryIP: e.primaryIP, Subnet: e.subnet, Table: e.table()})
	if err != nil {
		return fmt.Errorf("setting up the interface of ENI %s (MAC %s, device %d): %w", e.id, e.mac, e.device, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e.linked = true
	e.free = append(e.free, e.pending...)
	e.pending = nil
	slices.SortFunc(e.free, netip.Addr.Compare)
	logr.FromContextOrDiscard(ctx).Info("ENI ready for pods", "eni", e.id, "link", name, "device", e.device, "table", e.table())
	return nil
}

// Allocate gives key a free IP, from the ENI with the lowest device index that has one, so
// that pods fill the primary ENI first.
func (p *Pool) Allocate(key string) (Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, u := range p.used {
		if u.key == key { // a retried ADD gets the same address
			return Lease{IP: ip, ENIID: u.eni.id, Table: u.eni.table()}, nil
		}
	}
	now := p.cfg.Clock.Now()
	for _, e := range p.enis {
		i := slices.IndexFunc(e.free, func(a netip.Addr) bool { return !p.isCooling(a, now) })
		if i < 0 {
			continue
		}
		ip := e.free[i]
		e.free = slices.Delete(e.free, i, i+1)
		p.used[ip] = usedIP{key: key, eni: e}
		return Lease{IP: ip, ENIID: e.id, Table: e.table()}, nil
	}
	if p.full && p.totalRoom() == 0 && len(p.cooling) == 0 {
		return Lease{}, errNodeFull
	}
	return Lease{}, ErrNoFreeIP
}

// isCooling reports whether ip was released less than Cooldown ago, forgetting it once it is
// not. Callers hold p.mu.
func (p *Pool) isCooling(ip netip.Addr, now time.Time) bool {
	until, ok := p.cooling[ip]
	if ok && !now.Before(until) {
		delete(p.cooling, ip)
		return false
	}
	return ok
}

// available counts e's free IPs a pod may take now. Callers hold p.mu.
func (p *Pool) available(e *poolENI, now time.Time) int {
	n := 0
	for _, a := range e.free {
		if !p.isCooling(a, now) {
			n++
		}
	}
	return n
}

// Release returns ip to the pool.
func (p *Pool) Release(ip netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.release(ip)
}

// release returns ip to its ENI's free list, cooling. Callers hold p.mu.
func (p *Pool) release(ip netip.Addr) {
	if u, ok := p.used[ip]; ok {
		delete(p.used, ip)
		if p.cfg.Cooldown > 0 {
			p.cooling[ip] = p.cfg.Clock.Now().Add(p.cfg.Cooldown)
		}
		u.eni.free = append(u.eni.free, ip)
		slices.SortFunc(u.eni.free, netip.Addr.Compare)
	}
}

// ReleaseKey returns the IP leased to key, if any, to the pool and reports it: how the agent
// frees a container's address when its record cannot be read.
func (p *Pool) ReleaseKey(key string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, u := range p.used {
		if u.key == key {
			p.release(ip)
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// totalRoom counts the IPs EC2 could still assign to the pool's ENIs. Callers hold p.mu.
func (p *Pool) totalRoom() int {
	n := 0
	for _, e := range p.enis {
		n += p.cfg.IPsPerENI - e.assigned
	}
	return n
}

// Fill asks EC2 for IPs until the pool meets its targets (cooling IPs are not free yet):
// first more secondary IPs on the ENIs the pool has (lowest device first), then, when those
// are full, a new ENI in the primary ENI's subnet with its security groups — within the
// instance type's ENI limit, keeping a slot for the trunk when asked to.
func (p *Pool) Fill(ctx context.Context) error {
	p.fillMu.Lock()
	defer p.fillMu.Unlock()
	for _, e := range p.unlinked() { // attached earlier but the interface did not show in time
		if err := p.link(ctx, e); err != nil {
			return err
		}
	}
	for {
		p.mu.Lock()
		available, assigned := p.counts(p.cfg.Clock.Now())
		need := p.cfg.Targets.short(available, assigned, p.cfg.IPsPerENI)
		var grow *poolENI
		for _, e := range p.enis {
			if e.assigned < p.cfg.IPsPerENI {
				grow = e
				break
			}
		}
		full := p.full
		p.mu.Unlock()
		switch {
		case need <= 0:
			return nil
		case grow != nil:
			if err := p.assign(ctx, grow, need); err != nil {
				return err
			}
		case full:
			return nil
		default:
			if err := p.addENI(ctx, need); err != nil {
				return err
			}
		}
	}
}

func (p *Pool) unlinked() []*poolENI {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*poolENI
	for _, e := range p.enis {
		if !e.linked {
			out = append(out, e)
		}
	}
	return out
}

// assign adds secondary IPs to e: need, or as many as e has room for with the ENI target.
func (p *Pool) assign(ctx context.Context, e *poolENI, need int) error {
	p.mu.Lock()
	n := p.cfg.Targets.batch(need, p.cfg.IPsPerENI-e.assigned)
	p.mu.Unlock()
	ips, err := p.ec2.AssignPrivateIPs(ctx, e.id, n)
	if err != nil {
		return fmt.Errorf("assigning %d secondary IPs to %s: %w", n, e.id, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e.assigned += len(ips)
	e.grewAt = p.cfg.Clock.Now()
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			if e.linked {
				e.free = append(e.free, a)
			} else {
				e.pending = append(e.pending, a)
			}
		}
	}
	slices.SortFunc(e.free, netip.Addr.Compare)
	if len(ips) == 0 { // EC2 never answers an empty success; do not spin if it did
		e.assigned = p.cfg.IPsPerENI
	}
	return nil
}

// addENI creates an ENI with up to need secondary IPs and attaches it at the lowest free
// device index. A create without an attach leaves an ENI behind only if the agent dies in
// between; Sync deletes it at the next start.
func (p *Pool) addENI(ctx context.Context, need int) error {
	log := logr.FromContextOrDiscard(ctx)
	attached, err := p.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{InstanceID: p.cfg.InstanceID})
	if err != nil {
		return fmt.Errorf("describing the ENIs of %s: %w", p.cfg.InstanceID, err)
	}
	limit := p.cfg.MaxENIs
	if p.cfg.ReserveTrunkSlot && !slices.ContainsFunc(attached, func(n cloud.NetworkInterface) bool { return n.Type == cloud.InterfaceTypeTrunk }) {
		limit--
	}
	if len(attached) >= limit {
		p.mu.Lock()
		p.full = true
		p.mu.Unlock()
		log.Info("no ENI slot left for pod IPs", "attached", len(attached), "limit", p.cfg.MaxENIs, "reservedForTrunk", p.cfg.ReserveTrunkSlot)
		return nil
	}
	p.mu.Lock()
	primary := p.primary
	p.mu.Unlock()
	n, err := p.ec2.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{
		SubnetID: primary.SubnetID, SecurityGroups: primary.SecurityGroups,
		Description: "podsg-agent pod IPs of " + p.cfg.InstanceID, SecondaryIPCount: p.cfg.Targets.batch(need, p.cfg.IPsPerENI),
		Tags: map[string]string{cloud.TagInstance: p.cfg.InstanceID, cloud.TagNode: p.cfg.NodeName},
	})
	if err != nil {
		return fmt.Errorf("creating an ENI for pod IPs: %w", err)
	}
	if n.DeviceIndex, n.AttachmentID, err = p.attach(ctx, n.ID, attached); err != nil {
		if derr := p.ec2.DeleteNetworkInterface(context.WithoutCancel(ctx), n.ID); derr != nil {
			err = fmt.Errorf("%w (and deleting it: %v; the next start deletes it)", err, derr) //nolint:errorlint // the attach error is the one to act on
		}
		return err
	}
	// Without this the ENI would outlive its instance, as EC2 keeps attached ENIs by default.
	if err := p.ec2.SetDeleteOnTermination(ctx, n.ID, n.AttachmentID); err != nil {
		log.Error(err, "marking the ENI delete-on-termination; it will outlive the instance", "eni", n.ID)
	}
	n.InstanceID = p.cfg.InstanceID
	e, err := p.fromCloud(ctx, n)
	if err != nil {
		return err
	}
	e.pending, e.free = e.free, nil
	p.mu.Lock()
	p.enis = append(p.enis, e)
	slices.SortFunc(p.enis, func(a, b *poolENI) int { return a.device - b.device })
	p.mu.Unlock()
	log.Info("attached an ENI for pod IPs", "eni", e.id, "device", e.device, "ips", len(e.pending))
	return p.link(ctx, e)
}

// attach attaches eni at the lowest device index not in use. podsg-controller may attach the
// trunk at the same moment; losing that race means trying the next index.
func (p *Pool) attach(ctx context.Context, eniID string, attached []cloud.NetworkInterface) (int, string, error) {
	used := make([]int, 0, len(attached))
	for _, n := range attached {
		used = append(used, n.DeviceIndex)
	}
	for range 3 {
		index := 1
		for slices.Contains(used, index) {
			index++
		}
		id, err := p.ec2.AttachNetworkInterface(ctx, eniID, p.cfg.InstanceID, index)
		if err == nil {
			return index, id, nil
		}
		if !errors.Is(err, cloud.ErrInvalid) || cloud.Code(err) != "InvalidParameterValue" {
			return 0, "", fmt.Errorf("attaching ENI %s at device index %d: %w", eniID, index, err)
		}
		used = append(used, index) // taken since we looked
	}
	return 0, "", fmt.Errorf("attaching ENI %s: every device index tried was taken meanwhile", eniID)
}

// PoolStats are the pool's counts.
type PoolStats struct {
	Free, Used, ENIs int
	// Cooling IPs were released recently and wait out the cooldown before a pod gets them.
	Cooling int
	// Unassigned IPs and DeletedENIs are what Trim gave back to EC2 since the start.
	Unassigned, DeletedENIs int
}

// Stats reports free and used IPs and the ENIs they live on.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, now := PoolStats{Used: len(p.used), ENIs: len(p.enis), Unassigned: p.trim.unassigned, DeletedENIs: p.trim.deleted}, p.cfg.Clock.Now()
	for _, e := range p.enis {
		s.Free += p.available(e, now)
		s.Cooling += len(e.free) - p.available(e, now)
	}
	return s
}
