package agent

import (
	"strings"
	"testing"
)

// TestTargetsArithmetic: ipamd's rules, on a type with 3 secondary IPs per ENI. IP targets
// want WarmIPs free and MinimumIPs in all, and may give back what is above both; the ENI
// target wants WarmENIs ENIs' worth free and gives back nothing one IP at a time.
func TestTargetsArithmetic(t *testing.T) {
	const perENI = 3
	tests := map[string]struct {
		targets              Targets
		available, assigned  int
		short, over, batchOf int // batchOf: what one call asks for with room for 3
	}{
		"ENI target, fresh node":              {Targets{WarmENIs: 1}, 0, 0, 3, 0, 3},
		"ENI target, one ENI free":            {Targets{WarmENIs: 1}, 3, 6, 0, 0, 3},
		"ENI target, one IP short":            {Targets{WarmENIs: 1}, 2, 3, 1, 0, 3},
		"ENI target, far above: no single IP": {Targets{WarmENIs: 1}, 9, 9, 0, 0, 3},
		"two ENIs' worth":                     {Targets{WarmENIs: 2}, 4, 9, 2, 0, 3},
		"ENI target 0, nothing free":          {Targets{}, 0, 9, 1, 0, 3},
		"ENI target 0, one free":              {Targets{}, 1, 9, 0, 0, 3},
		"warm IPs, short":                     {Targets{WarmIPs: 2}, 1, 5, 1, 0, 1},
		"warm IPs, above":                     {Targets{WarmIPs: 2}, 5, 9, 0, 3, 0},
		"warm IPs ignore the ENI target":      {Targets{WarmIPs: 2, WarmENIs: 3}, 2, 2, 0, 0, 0},
		"minimum, fresh node":                 {Targets{WarmIPs: 2, MinimumIPs: 5}, 0, 0, 5, 0, 3},
		"minimum holds the free IPs":          {Targets{WarmIPs: 2, MinimumIPs: 5}, 5, 5, 0, 0, 0},
		"above both":                          {Targets{WarmIPs: 2, MinimumIPs: 5}, 6, 9, 0, 4, 0},
		"above warm, below minimum":           {Targets{WarmIPs: 2, MinimumIPs: 10}, 6, 9, 1, 0, 1},
		"minimum alone caps the node":         {Targets{MinimumIPs: 5}, 0, 5, 0, 0, 0},
		"minimum alone, IPs freed":            {Targets{MinimumIPs: 5}, 4, 7, 0, 2, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			short, over := tc.targets.short(tc.available, tc.assigned, perENI), tc.targets.over(tc.available, tc.assigned)
			if short != tc.short || over != tc.over {
				t.Errorf("short, over = %d, %d; want %d, %d", short, over, tc.short, tc.over)
			}
			if b := tc.targets.batch(short, perENI); b != tc.batchOf {
				t.Errorf("batch(%d, %d) = %d, want %d", short, perENI, b, tc.batchOf)
			}
		})
	}
}

func TestTargetsFromEnv(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		want    Targets
		wantErr string
	}{
		"none: ipamd's default":  {nil, Targets{WarmENIs: 1}, ""},
		"empty is unset":         {map[string]string{EnvWarmIPTarget: ""}, Targets{WarmENIs: 1}, ""},
		"IP targets":             {map[string]string{EnvWarmIPTarget: "2", EnvMinimumIPTarget: "10"}, Targets{WarmIPs: 2, MinimumIPs: 10, WarmENIs: 1}, ""},
		"ENI target 0":           {map[string]string{EnvWarmENITarget: "0"}, Targets{}, ""},
		"not a number":           {map[string]string{EnvWarmIPTarget: "five"}, Targets{}, `$WARM_IP_TARGET="five"`},
		"negative":               {map[string]string{EnvWarmENITarget: "-1"}, Targets{}, `$WARM_ENI_TARGET="-1"`},
		"both wrong, both named": {map[string]string{EnvMinimumIPTarget: "1.5", EnvWarmENITarget: "x"}, Targets{}, "$MINIMUM_IP_TARGET"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := TargetsFromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("TargetsFromEnv = %+v, %v; want an error naming %s", got, err, tc.wantErr)
				}
				if name == "both wrong, both named" && !strings.Contains(err.Error(), "$WARM_ENI_TARGET") {
					t.Errorf("error %v names only one of the two bad variables", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("TargetsFromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
