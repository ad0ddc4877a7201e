package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/cloud"
)

// Trimming gives back what the pool holds above its targets, in this order, so that a crash
// at any point loses no IP and hands none out twice:
//
//  1. Under the pool's lock, the IPs to give back (free, past their cool-down, of an ENI that
//     did not grow within MinAge) leave the free list: no pod can get them from then on. An
//     ENI to delete (ours, empty, nothing cooling) leaves the pool the same way.
//  2. EC2 unassigns the IPs, or detaches and deletes the ENI.
//  3. The pool forgets them.
//
// Pods' records on disk are the truth about leased IPs, and the pool never gives back a leased
// IP (a released one only after its cool-down, by when its DEL has deleted the record; with
// no cool-down a record may outlive its IP, which a start ignores and the retried DEL deletes).
// So a crash between 2 and 3 leaves nothing to undo: the next start reads EC2 (the IP is gone,
// or still assigned and free) and the records.
// An ENI detached but not deleted is deleted at the next start (Sync), as after a crash
// during Fill. When an unassign fails the outcome is unknown (the request may have been
// carried out); the pool asks EC2 which of the IPs the ENI still has and only those become
// free again.

// trimState is the pool's memory of trimming. Guarded by Pool.mu.
type trimState struct {
	last time.Time // when the last trim gave something back
	// doomed ENIs left the pool but their detach or delete failed; retried at every Trim.
	doomed []cloud.ENIRef
	// unassigned and deleted count what trimming gave back since start (metrics).
	unassigned, deleted int
}

// counts returns the IPs available to pods (free past their cool-down, or waiting for their
// ENI's link) and the IPs assigned in all. Callers hold p.mu.
func (p *Pool) counts(now time.Time) (available, assigned int) {
	for _, e := range p.enis {
		available += p.available(e, now) + len(e.pending)
		assigned += e.assigned
	}
	return available, assigned
}

// Reconcile brings the pool to its targets: Fill when it is short, Trim when it is above.
func (p *Pool) Reconcile(ctx context.Context) error {
	return errors.Join(p.Fill(ctx), p.Trim(ctx))
}

// Trim gives back, at most once per TrimInterval, what the pool holds above its targets: one
// ENI of ours that no pod uses and that the targets do not need (detached and deleted; never
// the primary ENI, nor the trunk, which the pool does not hold), then, with IP targets, the
// free IPs above them, each ENI's in one UnassignPrivateIpAddresses call, from the highest
// device index down, so that ENIs empty out and can go at a later Trim. It also finishes
// what an earlier Trim could not.
func (p *Pool) Trim(ctx context.Context) error {
	p.fillMu.Lock()
	defer p.fillMu.Unlock()
	errs := []error{p.finishDoomed(ctx)}
	for _, e := range p.withLeaving() {
		errs = append(errs, p.settle(ctx, e))
	}
	plan, ok := p.planTrim()
	if !ok {
		return errors.Join(errs...)
	}
	if plan.eni != nil {
		errs = append(errs, p.deleteENI(ctx, plan.eni))
	}
	for _, u := range plan.unassign {
		errs = append(errs, p.unassign(ctx, u.eni, u.ips))
	}
	return errors.Join(errs...)
}

type trimPlan struct {
	eni      *poolENI // to detach and delete, or nil
	unassign []ipBatch
}

type ipBatch struct {
	eni *poolENI
	ips []netip.Addr
}

// planTrim picks what to give back and takes it out of reach of Allocate (step 1). It
// reports false when it is not time yet or nothing is above the targets.
func (p *Pool) planTrim() (trimPlan, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Clock.Now()
	if now.Sub(p.trim.last) < p.cfg.TrimInterval {
		return trimPlan{}, false
	}
	var plan trimPlan
	available, assigned := p.counts(now)
	if e := p.deletableENI(now, available, assigned); e != nil {
		p.enis = slices.DeleteFunc(p.enis, func(x *poolENI) bool { return x == e })
		p.full = false // its slot frees up
		available -= p.available(e, now)
		assigned -= e.assigned
		plan.eni = e
	}
	over := p.cfg.Targets.over(available, assigned)
	for _, e := range slices.Backward(p.enis) {
		if over == 0 {
			break
		}
		if now.Sub(e.grewAt) < p.cfg.MinAge {
			continue
		}
		ips := p.takeFree(e, now, over)
		if len(ips) > 0 {
			plan.unassign = append(plan.unassign, ipBatch{eni: e, ips: ips})
			over -= len(ips)
		}
	}
	if plan.eni == nil && len(plan.unassign) == 0 {
		return trimPlan{}, false
	}
	p.trim.last = now
	return plan, true
}

// deletableENI returns the ENI of highest device index that Trim may delete: created by an
// agent for this instance, old enough, with no pod, nothing cooling, pending or leaving, and
// whose IPs the targets do not need. Callers hold p.mu.
func (p *Pool) deletableENI(now time.Time, available, assigned int) *poolENI {
	busy := map[*poolENI]bool{}
	for _, u := range p.used {
		busy[u.eni] = true
	}
	for _, e := range slices.Backward(p.enis) {
		free := p.available(e, now)
		switch {
		case e.device == 0 || !e.ours || !e.linked || busy[e] || len(e.pending) > 0 || len(e.leaving) > 0:
		case free != len(e.free): // some IP of it is cooling
		case now.Sub(e.grewAt) < p.cfg.MinAge:
		case p.cfg.Targets.short(available-free, assigned-e.assigned, p.cfg.IPsPerENI) > 0:
		default:
			return e
		}
	}
	return nil
}

// takeFree moves up to n of e's free IPs that no pod may be waiting out a cool-down for to
// e.leaving, highest first (Allocate takes the lowest). Callers hold p.mu.
func (p *Pool) takeFree(e *poolENI, now time.Time, n int) []netip.Addr {
	var ips []netip.Addr
	for i := len(e.free) - 1; i >= 0 && len(ips) < n; i-- {
		if a := e.free[i]; !p.isCooling(a, now) {
			ips = append(ips, a)
			e.free = slices.Delete(e.free, i, i+1)
		}
	}
	e.leaving = append(e.leaving, ips...)
	return ips
}

// deleteENI detaches and deletes an ENI that has left the pool; if EC2 fails, the next Trim
// retries (and the next start, through Sync, if the agent stops first).
func (p *Pool) deleteENI(ctx context.Context, e *poolENI) error {
	ref := cloud.ENIRef{ID: e.id, AttachmentID: e.attachmentID}
	if err := cloud.FreeENI(ctx, p.ec2, ref); err != nil {
		p.mu.Lock()
		p.trim.doomed = append(p.trim.doomed, ref)
		p.mu.Unlock()
		return fmt.Errorf("giving back ENI %s (device %d), which no pod uses: %w", e.id, e.device, err)
	}
	p.mu.Lock()
	p.trim.deleted++
	p.mu.Unlock()
	logr.FromContextOrDiscard(ctx).Info("gave back an ENI above the warm targets", "eni", e.id, "device", e.device, "ips", e.assigned)
	return nil
}

// finishDoomed retries detaching and deleting the ENIs an earlier Trim could not.
func (p *Pool) finishDoomed(ctx context.Context) error {
	p.mu.Lock()
	doomed := p.trim.doomed
	p.trim.doomed = nil
	p.mu.Unlock()
	var errs []error
	for _, ref := range doomed {
		err := cloud.FreeENI(ctx, p.ec2, ref)
		p.mu.Lock()
		if err != nil {
			p.trim.doomed = append(p.trim.doomed, ref)
			errs = append(errs, fmt.Errorf("giving back ENI %s: %w", ref.ID, err))
		} else {
			p.trim.deleted++
		}
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}

// unassign gives ips of e back to EC2 (step 2) and forgets them (step 3).
func (p *Pool) unassign(ctx context.Context, e *poolENI, ips []netip.Addr) error {
	strs := make([]string, len(ips))
	for i, a := range ips {
		strs[i] = a.String()
	}
	if err := p.ec2.UnassignPrivateIPs(ctx, e.id, strs); err != nil {
		err = fmt.Errorf("unassigning %d free IPs from %s: %w", len(ips), e.id, err)
		return errors.Join(err, p.settle(ctx, e))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forget(e, ips)
	logr.FromContextOrDiscard(ctx).Info("gave back free IPs above the warm targets", "eni", e.id, "ips", strs)
	return nil
}

// forget drops ips, given back, from e. Callers hold p.mu.
func (p *Pool) forget(e *poolENI, ips []netip.Addr) {
	e.leaving = slices.DeleteFunc(e.leaving, func(a netip.Addr) bool { return slices.Contains(ips, a) })
	e.assigned -= len(ips)
	p.trim.unassigned += len(ips)
}

// settle learns from EC2 which of e's leaving IPs it still has after an unassign whose
// outcome is unknown: those are free again, the others are gone. If EC2 cannot tell, they
// stay out of reach until the next Trim asks again.
func (p *Pool) settle(ctx context.Context, e *poolENI) error {
	enis, err := p.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{e.id}})
	if err != nil {
		return fmt.Errorf("asking EC2 which IPs %s still has after an unassign that failed: %w", e.id, err)
	}
	var still []string
	for _, n := range enis {
		still = append(still, n.SecondaryIPs...)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var gone []netip.Addr
	for _, a := range e.leaving {
		if slices.Contains(still, a.String()) {
			e.free = append(e.free, a)
		} else {
			gone = append(gone, a)
		}
	}
	e.leaving = nil
	e.assigned -= len(gone)
	p.trim.unassigned += len(gone)
	slices.SortFunc(e.free, netip.Addr.Compare)
	return nil
}

// withLeaving returns the ENIs with IPs whose unassign has an unknown outcome.
func (p *Pool) withLeaving() []*poolENI {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*poolENI
	for _, e := range p.enis {
		if len(e.leaving) > 0 {
			out = append(out, e)
		}
	}
	return out
}
