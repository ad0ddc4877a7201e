package cni

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podsg/podsg/internal/podnet"
)

// Defaults of the network configuration.
const (
	DefaultAgentSocket = "/run/podsg/agent.sock"
	DefaultStateDir    = "/var/lib/podsg/pods"
	// DefaultVethPrefix is the agent's default --veth-prefix (AWS's VPC CNI's).
	DefaultVethPrefix = "eni"
	// DefaultAgentTimeout bounds an ADD's wait for the agent, which includes the agent's own
	// bounded wait for a branch pod's annotation.
	DefaultAgentTimeout = 30 * time.Second
)

// NetConf is the plugin's network configuration (the conflist entry the agent installs).
type NetConf struct {
	types.NetConf
	// AgentSocket is the node agent's unix socket.
	AgentSocket string `json:"agentSocket,omitempty"`
	// StateDir holds the per-container records (podstate), shared with the agent.
	StateDir string `json:"stateDir,omitempty"`
	// VethPrefix is the agent's --veth-prefix: a DEL whose record is unusable finds the pod's
	// host veth by the name the agent gave it.
	VethPrefix string `json:"vethPrefix,omitempty"`
	// MTU of pod veths; 0 keeps the kernel default.
	MTU int `json:"mtu,omitempty"`
	// SubInterfaceDriver makes branch pods' trunk sub-interfaces: "vlan" (AWS) or "vxlan" (the
	// local VPC, whose kernel has no 802.1Q).
	SubInterfaceDriver string `json:"subInterfaceDriver,omitempty"`
	// VXLANPort is the vxlan driver's UDP port (default 4789).
	VXLANPort int `json:"vxlanPort,omitempty"`
	// AgentTimeout bounds each call to the agent, as a Go duration ("30s").
	AgentTimeout string `json:"agentTimeout,omitempty"`

	timeout time.Duration
	driver  podnet.SubInterfaceDriver
}

// ParseConf decodes and validates the configuration, filling defaults. Errors name the field,
// so that a broken conflist is fixed from the kubelet event alone.
func ParseConf(data []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decoding network configuration: %w", err)
	}
	if c.AgentSocket == "" {
		c.AgentSocket = DefaultAgentSocket
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.VethPrefix == "" {
		c.VethPrefix = DefaultVethPrefix
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 9001) {
		return nil, fmt.Errorf("network configuration: mtu %d out of range 576..9001", c.MTU)
	}
	c.timeout = DefaultAgentTimeout
	if c.AgentTimeout != "" {
		d, err := time.ParseDuration(c.AgentTimeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("network configuration: agentTimeout %q is not a positive duration like \"30s\"", c.AgentTimeout)
		}
		c.timeout = d
	}
	switch c.SubInterfaceDriver {
	case "", podnet.DriverVLAN:
		c.SubInterfaceDriver, c.driver = podnet.DriverVLAN, podnet.VLAN{}
	case podnet.DriverVXLAN:
		if c.VXLANPort < 0 || c.VXLANPort > 65535 {
			return nil, fmt.Errorf("network configuration: vxlanPort %d out of range", c.VXLANPort)
		}
		c.driver = podnet.VXLAN{Port: c.VXLANPort}
	default:
		return nil, fmt.Errorf("network configuration: subInterfaceDriver %q: want %q or %q", c.SubInterfaceDriver, podnet.DriverVLAN, podnet.DriverVXLAN)
	}
	return c, nil
}

// k8sArgs are the CNI_ARGS kubelet passes.
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
	K8S_POD_NAME      types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
	K8S_POD_UID       types.UnmarshallableString //nolint:revive // CNI_ARGS key names are fixed
}

func parseArgs(s string) (ns, name, uid string, err error) {
	a := k8sArgs{}
	if err := types.LoadArgs(s, &a); err != nil {
		return "", "", "", fmt.Errorf("parsing CNI_ARGS: %w", err)
	}
	if a.K8S_POD_NAMESPACE == "" || a.K8S_POD_NAME == "" {
		return "", "", "", fmt.Errorf("CNI_ARGS lacks K8S_POD_NAMESPACE or K8S_POD_NAME: podsg-cni serves Kubernetes pods")
	}
	return string(a.K8S_POD_NAMESPACE), string(a.K8S_POD_NAME), string(a.K8S_POD_UID), nil
}
