package cni

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/podnet"
)

func TestParseConf(t *testing.T) {
	tests := map[string]struct {
		conf    string
		wantErr string
		check   func(t *testing.T, c *NetConf)
	}{
		"defaults": {conf: `{"cniVersion":"1.0.0","name":"podsg","type":"podsg-cni"}`, check: func(t *testing.T, c *NetConf) {
			if c.AgentSocket != DefaultAgentSocket || c.StateDir != DefaultStateDir || c.timeout != DefaultAgentTimeout || c.VethPrefix != DefaultVethPrefix {
				t.Errorf("defaults not filled: %+v", c)
			}
			if _, ok := c.driver.(podnet.VLAN); !ok || c.SubInterfaceDriver != podnet.DriverVLAN {
				t.Errorf("driver = %T %q, want the AWS vlan driver", c.driver, c.SubInterfaceDriver)
			}
		}},
		"local VPC": {conf: `{"cniVersion":"1.0.0","name":"podsg","type":"podsg-cni","subInterfaceDriver":"vxlan","vxlanPort":4790,"mtu":9001,"agentTimeout":"5s"}`,
			check: func(t *testing.T, c *NetConf) {
				if d, ok := c.driver.(podnet.VXLAN); !ok || d.Port != 4790 || c.timeout != 5*time.Second || c.MTU != 9001 {
					t.Errorf("got %+v driver %+v", c, c.driver)
				}
			}},
		"not json":       {conf: `{"cniVersion":`, wantErr: "decoding network configuration"},
		"unknown driver": {conf: `{"name":"p","subInterfaceDriver":"ipvlan"}`, wantErr: `subInterfaceDriver "ipvlan"`},
		"bad mtu":        {conf: `{"name":"p","mtu":100000}`, wantErr: "mtu 100000 out of range"},
		"bad timeout":    {conf: `{"name":"p","agentTimeout":"soon"}`, wantErr: `agentTimeout "soon"`},
		"negative port":  {conf: `{"name":"p","subInterfaceDriver":"vxlan","vxlanPort":-1}`, wantErr: "vxlanPort -1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseConf([]byte(tc.conf))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseArgs(t *testing.T) {
	ns, name, uid, err := parseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=postgres-test;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1")
	if err != nil || ns != "default" || name != "postgres-test" || uid != "u-1" {
		t.Fatalf("parseArgs = %q %q %q %v", ns, name, uid, err)
	}
	if _, _, _, err := parseArgs("IgnoreUnknown=1"); err == nil || !strings.Contains(err.Error(), "K8S_POD_NAMESPACE") {
		t.Fatalf("missing pod args: %v", err)
	}
}

func TestHostVeths(t *testing.T) {
	args := "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"
	if got, want := hostVeths(&NetConf{VethPrefix: "eni"}, args), []string{podnet.HostVethName("eni", "default", "web"), podnet.HostVethName("vlan", "default", "web")}; !slices.Equal(got, want) {
		t.Errorf("hostVeths = %v, want %v", got, want)
	}
	if got := hostVeths(&NetConf{VethPrefix: "vlan"}, args); len(got) != 1 {
		t.Errorf("hostVeths with the strict prefix = %v, want it once", got)
	}
	if got := hostVeths(&NetConf{VethPrefix: "eni"}, "IgnoreUnknown=1"); got != nil {
		t.Errorf("hostVeths without the pod's name = %v, want none", got)
	}
}
