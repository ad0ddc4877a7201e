package branch

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
)

func TestClassify(t *testing.T) {
	apiErr := func(code string, kind error) error {
		return fmt.Errorf("creating branch ENI: %w", &cloud.APIError{Op: "CreateNetworkInterface", Code: code, Kind: kind})
	}
	tests := map[string]struct {
		err  error
		want Action
	}{
		"throttled is silent":       {apiErr("RequestLimitExceeded", cloud.ErrThrottled), Action{}},
		"5xx is silent":             {apiErr("InternalError", cloud.ErrUnavailable), Action{}},
		"conflict is silent":        {apiErr("IncorrectState", cloud.ErrConflict), Action{}},
		"timeout is silent":         {context.DeadlineExceeded, Action{}},
		"missing group is reported": {apiErr("InvalidGroup.NotFound", cloud.ErrNotFound), Action{Report: true, Reason: v1beta1.ReasonAllocationFailed}},
		"quota is reported":         {apiErr("SecurityGroupsPerInterfaceLimitExceeded", cloud.ErrQuota), Action{Report: true, Reason: v1beta1.ReasonAllocationFailed}},
		"invalid is reported":       {apiErr("InvalidParameter", cloud.ErrInvalid), Action{Report: true, Reason: v1beta1.ReasonAllocationFailed}},
		"unclassified is silent":    {errors.New("connection reset"), Action{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%v) = %+v, want %+v", tc.err, got, tc.want)
			}
		})
	}
}
