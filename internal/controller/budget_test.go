package controller

import "testing"

func TestEC2BudgetShare(t *testing.T) {
	tests := map[string]struct {
		budget    EC2Budget
		wantRate  float64
		wantBurst int
		wantErr   bool
	}{
		"the default leaves a fifth": {budget: DefaultEC2Budget, wantRate: 4, wantBurst: 40},
		"leave nothing":              {budget: EC2Budget{MutatingRate: 5, MutatingBurst: 50}, wantRate: 5, wantBurst: 50},
		"a burst of at least one":    {budget: EC2Budget{MutatingRate: 5, MutatingBurst: 1, LeaveShare: 0.5}, wantRate: 2.5, wantBurst: 1},
		"leaving everything":         {budget: EC2Budget{MutatingRate: 5, MutatingBurst: 50, LeaveShare: 1}, wantErr: true},
		"leaving a negative share":   {budget: EC2Budget{MutatingRate: 5, MutatingBurst: 50, LeaveShare: -0.1}, wantErr: true},
		"no rate":                    {budget: EC2Budget{MutatingBurst: 50}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rate, burst, err := tc.budget.share(tc.budget.MutatingRate, tc.budget.MutatingBurst)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (rate != tc.wantRate || burst != tc.wantBurst) {
				t.Fatalf("share = %v/s, burst %d; want %v/s, burst %d", rate, burst, tc.wantRate, tc.wantBurst)
			}
		})
	}
}
