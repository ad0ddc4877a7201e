package agent

import (
	"errors"
	"fmt"
	"strconv"
)

// Targets size the warm pool, with the names and meaning of AWS's VPC CNI (ipamd), so that a
// DaemonSet's settings carry over. Counts are of secondary IPs that pods may take now: an IP
// resting after its pod left (the cool-down) is not free yet, so it does not count as warm.
type Targets struct {
	// WarmIPs (WARM_IP_TARGET) is how many free IPs to keep. MinimumIPs (MINIMUM_IP_TARGET)
	// is a floor on the IPs assigned, free or not. Setting either switches the pool to IP
	// targets: it assigns just the IPs it lacks, and gives back free IPs above both targets.
	// MinimumIPs alone caps the node at that many IPs, as in ipamd (AWS recommends a
	// WarmIPs > 0 with it).
	WarmIPs, MinimumIPs int
	// WarmENIs (WARM_ENI_TARGET) applies when neither IP target is set: keep that many ENIs'
	// worth of free IPs, assigning a whole ENI's worth at a time (fewer EC2 calls), and give
	// back only whole ENIs that no pod uses. 0 grows only when no IP is free.
	WarmENIs int
}

// DefaultTargets are ipamd's defaults: one ENI's worth of free IPs.
var DefaultTargets = Targets{WarmENIs: 1}

// The environment variables AWS's VPC CNI reads, which podsg-agent reads too.
const (
	EnvWarmIPTarget    = "WARM_IP_TARGET"
	EnvMinimumIPTarget = "MINIMUM_IP_TARGET"
	EnvWarmENITarget   = "WARM_ENI_TARGET"
)

// TargetsFromEnv returns DefaultTargets overridden by the environment variables that are set.
// Unlike ipamd, which falls back to its default on a value it cannot parse, a bad value is
// an error naming the variable.
func TargetsFromEnv(lookup func(string) (string, bool)) (Targets, error) {
	t := DefaultTargets
	var errs []error
	for _, v := range []struct {
		name string
		dst  *int
	}{{EnvWarmIPTarget, &t.WarmIPs}, {EnvMinimumIPTarget, &t.MinimumIPs}, {EnvWarmENITarget, &t.WarmENIs}} {
		s, ok := lookup(v.name)
		if !ok || s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("$%s=%q: want a whole number, 0 or more", v.name, s))
			continue
		}
		*v.dst = n
	}
	return t, errors.Join(errs...)
}

func (t Targets) validate() error {
	if t.WarmIPs < 0 || t.MinimumIPs < 0 || t.WarmENIs < 0 {
		return fmt.Errorf("--warm-ip-target %d, --minimum-ip-target %d and --warm-eni-target %d must not be negative",
			t.WarmIPs, t.MinimumIPs, t.WarmENIs)
	}
	return nil
}

// ipTargets reports whether the IP targets rule (either one set), as in ipamd.
func (t Targets) ipTargets() bool { return t.WarmIPs > 0 || t.MinimumIPs > 0 }

// short is how many IPs the pool lacks, given how many are available (free past their
// cool-down, or assigned and waiting for their ENI's link) and how many are assigned in all.
func (t Targets) short(available, assigned, perENI int) int {
	switch {
	case t.ipTargets():
		return max(t.WarmIPs-available, t.MinimumIPs-assigned, 0)
	case t.WarmENIs == 0 && available == 0:
		return 1
	default:
		return max(t.WarmENIs*perENI-available, 0)
	}
}

// over is how many free IPs the pool may give back one by one: those above both IP targets.
// With the ENI target, IPs go back only with their whole ENI (as in ipamd), so none.
func (t Targets) over(available, assigned int) int {
	if !t.ipTargets() {
		return 0
	}
	return max(min(available-t.WarmIPs, assigned-t.MinimumIPs), 0)
}

// batch is how many IPs to ask EC2 for at once, on an ENI with room for that many more:
// what is short with IP targets, a full ENI with the ENI target.
func (t Targets) batch(short, room int) int {
	if t.ipTargets() {
		return min(short, room)
	}
	return room
}
