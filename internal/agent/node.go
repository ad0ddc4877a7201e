package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
)

const localTable = 255 // RT_TABLE_LOCAL

// configureNode applies the node-wide settings pods need, idempotently:
//   - IPv4 forwarding: pod traffic is routed by the node.
//   - strict mode: the local table moves from priority 0 to 20, after the branch pods'
//     priority-10 rules, so that a branch pod's traffic to its own node still leaves through
//     its branch ENI (AWS's VPC CNI does the same); and TCP early demux is off, because
//     kubelet's probes come back asymmetrically through the trunk, and the cached receive
//     route of early demux would drop the replies.
func configureNode(mode string) error {
	if err := sysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if mode != podstate.ModeStrict {
		return nil
	}
	if err := sysctl("net/ipv4/tcp_early_demux", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return moveLocalRule(20)
}

func moveLocalRule(priority int) error {
	rules, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing rules: %w", err)
	}
	hasNew, old := false, (*netlink.Rule)(nil)
	for i := range rules {
		r := &rules[i]
		if r.Table != localTable || r.Src != nil || r.Dst != nil || r.IifName != "" {
			continue
		}
		switch r.Priority {
		case priority:
			hasNew = true
		case 0:
			old = r
		}
	}
	if !hasNew {
		r := netlink.NewRule()
		r.Table, r.Priority = localTable, priority
		if err := netlink.RuleAdd(r); err != nil {
			return fmt.Errorf("adding the local table rule at priority %d: %w", priority, err)
		}
	}
	if old != nil {
		if err := netlink.RuleDel(old); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("removing the local table rule at priority 0: %w", err)
		}
	}
	return nil
}

// sysctl sets key to value unless it already holds: on AWS an init container sets these and
// the agent's own /proc/sys is read-only.
func sysctl(key, value string) error {
	if cur, err := os.ReadFile("/proc/sys/" + key); err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s=%s: %w", key, value, err)
	}
	return nil
}
