package server

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/internal/vpc/state"
)

// Profile configures the realism knobs; the zero Profile disables them all.
type Profile struct {
	Latency  Latency  `json:"latency"`
	Throttle Throttle `json:"throttle"`
	Faults   Faults   `json:"faults"`
	// Limits overrides EC2 quotas (per-ENI groups, per-group rules).
	Limits *state.Limits `json:"limits,omitempty"`
}

// Latency delays responses: Default for every action unless Actions says otherwise.
type Latency struct {
	Default Duration            `json:"default"`
	Actions map[string]Duration `json:"actions"`
}

// Throttle configures token buckets. A nil class bucket disables throttling
// for that class.
type Throttle struct {
	NonMutating *Bucket `json:"nonMutating"`
	// UnfilteredNonMutating applies to Describe calls without ids, filters
	// or MaxResults, which EC2 throttles harder.
	UnfilteredNonMutating *Bucket           `json:"unfilteredNonMutating"`
	Mutating              *Bucket           `json:"mutating"`
	Actions               map[string]Bucket `json:"actions"`
}

// Bucket is a token bucket: Capacity tokens, refilled at RefillPerSecond.
type Bucket struct {
	Capacity        float64 `json:"capacity"`
	RefillPerSecond float64 `json:"refillPerSecond"`
}

// Faults injects errors.
type Faults struct {
	// Seed makes probabilistic faults reproducible.
	Seed  uint64      `json:"seed"`
	Rules []FaultRule `json:"rules"`
}

// FaultRule fails matching calls. Either Nth (fail the Nth matching call,
// and Times-1 following ones) or Probability (fail each matching call with
// that probability while inside the After/For window since start).
type FaultRule struct {
	// Action is an action name or "*".
	Action      string   `json:"action"`
	Nth         int      `json:"nth,omitempty"`
	Times       int      `json:"times,omitempty"`
	Probability float64  `json:"probability,omitempty"`
	After       Duration `json:"after,omitempty"`
	For         Duration `json:"for,omitempty"`
	// Code is the EC2 error code; Status defaults from it (500 for
	// InternalError, 503 for Unavailable and RequestLimitExceeded, else 400).
	Code    string `json:"code"`
	Status  int    `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// Duration is a time.Duration written as "150ms" in profiles.
type Duration struct{ time.Duration }

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"150ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

//go:embed profiles/*.yaml
var builtinProfiles embed.FS

// LoadProfile reads a profile: a built-in name ("aws") or a YAML/JSON file.
func LoadProfile(nameOrPath string) (Profile, error) {
	data, err := builtinProfiles.ReadFile("profiles/" + nameOrPath + ".yaml")
	if err != nil || strings.ContainsAny(nameOrPath, "/.") {
		data, err = os.ReadFile(nameOrPath)
		if err != nil {
			return Profile{}, fmt.Errorf("reading profile: %w", err)
		}
	}
	return ParseProfile(data)
}

// ParseProfile decodes a YAML or JSON profile, rejecting unknown fields.
func ParseProfile(data []byte) (Profile, error) {
	var p Profile
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return Profile{}, fmt.Errorf("parsing profile: %w", err)
	}
	return p, p.validate()
}

func (p Profile) validate() error {
	buckets := map[string]*Bucket{"nonMutating": p.Throttle.NonMutating, "unfilteredNonMutating": p.Throttle.UnfilteredNonMutating, "mutating": p.Throttle.Mutating}
	for a, b := range p.Throttle.Actions {
		buckets[a] = &b
	}
	for name, b := range buckets {
		if b != nil && (b.Capacity < 1 || b.RefillPerSecond < 0) {
			return fmt.Errorf("throttle bucket %s: capacity must be >= 1 and refill >= 0", name)
		}
	}
	for i, r := range p.Faults.Rules {
		switch {
		case r.Action == "" || r.Code == "":
			return fmt.Errorf("fault rule %d: action and code are required", i)
		case (r.Nth > 0) == (r.Probability > 0):
			return fmt.Errorf("fault rule %d: set exactly one of nth and probability", i)
		case r.Probability > 1:
			return fmt.Errorf("fault rule %d: probability must be <= 1", i)
		}
	}
	return nil
}
