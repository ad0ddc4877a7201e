package policyenforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/podsg/podsg/internal/netpol"
)

// NFT is the Applier of the nft command: in the current network namespace, or in the named
// one (ip netns exec) when Netns is set.
type NFT struct{ Netns string }

func (n NFT) command(ctx context.Context, args ...string) *exec.Cmd {
	if n.Netns != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Netns, "nft"}, args...)...)
	}
	return exec.CommandContext(ctx, "nft", args...)
}

// Apply runs the script as one nft transaction.
func (n NFT) Apply(ctx context.Context, script string) error {
	cmd := n.command(ctx, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Counters reads the named counters of netpol.NFTTable.
func (n NFT) Counters(ctx context.Context) (map[string]netpol.CounterValue, error) {
	var stderr bytes.Buffer
	cmd := n.command(ctx, "-j", "list", "counters", "table", "inet", netpol.NFTTable)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return map[string]netpol.CounterValue{}, nil // no table yet
		}
		return nil, fmt.Errorf("nft list counters: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return parseCounters(out)
}

func parseCounters(data []byte) (map[string]netpol.CounterValue, error) {
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Table   string `json:"table"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading nft's counters: %w", err)
	}
	out := map[string]netpol.CounterValue{}
	for _, o := range doc.Nftables {
		if o.Counter != nil && o.Counter.Table == netpol.NFTTable {
			out[o.Counter.Name] = netpol.CounterValue{Packets: o.Counter.Packets, Bytes: o.Counter.Bytes}
		}
	}
	return out, nil
}
