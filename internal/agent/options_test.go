package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/podstate"
)

func TestOptionsValidate(t *testing.T) {
	valid := func() Options {
		o := Options{NodeName: "node-1", Targets: DefaultTargets, IPCooldown: 30 * time.Second,
			Alloc: AllocConfig{Mode: podstate.ModeStrict, VethPrefix: "eni", RouteTableBase: 100, AnnotationWait: 5 * time.Second}}
		o.CNI.CNIVersion, o.CNI.Name = "1.0.0", "podsg"
		return o
	}
	tests := map[string]struct {
		mutate  func(*Options)
		wantErr string
	}{
		"defaults":                {func(*Options) {}, ""},
		"no node name":            {func(o *Options) { o.NodeName = "" }, "--node-name"},
		"unknown mode":            {func(o *Options) { o.Alloc.Mode = "lenient" }, "--pod-sg-enforcing-mode"},
		"reserved veth prefix":    {func(o *Options) { o.Alloc.VethPrefix = "vlan" }, "--veth-prefix"},
		"base among ENI tables":   {func(o *Options) { o.Alloc.RouteTableBase = 10 }, "must miss the ENI tables"},
		"tables reach 253":        {func(o *Options) { o.Alloc.RouteTableBase = 140 }, "reserved 253-255"},
		"tables above the kernel": {func(o *Options) { o.Alloc.RouteTableBase = 1000 }, ""},
		"negative warm IPs":       {func(o *Options) { o.Targets.WarmIPs = -1 }, "--warm-ip-target -1"},
		"negative minimum IPs":    {func(o *Options) { o.Targets.MinimumIPs = -1 }, "--minimum-ip-target -1"},
		"negative warm ENIs":      {func(o *Options) { o.Targets.WarmENIs = -1 }, "--warm-eni-target -1"},
		"IP targets":              {func(o *Options) { o.Targets = Targets{WarmIPs: 2, MinimumIPs: 10} }, ""},
		"negative cooldown":       {func(o *Options) { o.IPCooldown = -time.Second }, "--ip-cooldown"},
		"no annotation wait":      {func(o *Options) { o.Alloc.AnnotationWait = 0 }, "--annotation-wait"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := valid()
			tc.mutate(&o)
			err := o.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
