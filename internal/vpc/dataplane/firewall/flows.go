package firewall

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// Flow is the counter of one rule: what it accepted or rejected.
type Flow struct {
	ENI       string
	Direction string // Ingress, Egress, or "" for fabric-wide rules
	GroupID   string
	// Rule is the sgr- id, or "default-deny", "source-check",
	// "established", "invalid", "unknown-port".
	Rule    string
	Verdict string // "accept" or "drop"
	Packets uint64
	Bytes   uint64
}

// Flows reads every counted rule of the table; a missing table has none.
func Flows(c Conn) ([]Flow, error) {
	var out []Flow
	err := eachCountedRule(c, func(chain, comment string, v expr.VerdictKind, cnt *expr.Counter) {
		f := Flow{Packets: cnt.Packets, Bytes: cnt.Bytes, Verdict: "accept"}
		if v == expr.VerdictDrop {
			f.Verdict = "drop"
		}
		if parts := strings.Split(comment, sep); len(parts) == 4 {
			f.ENI, f.Direction, f.GroupID, f.Rule = parts[0], parts[1], parts[2], parts[3]
		} else {
			f.Rule = comment
		}
		out = append(out, f)
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].ENI < out[j].ENI })
	return out, err
}

func readCounters(c Conn) (map[string]expr.Counter, error) {
	m := map[string]expr.Counter{}
	err := eachCountedRule(c, func(chain, comment string, _ expr.VerdictKind, cnt *expr.Counter) {
		m[chain+"\x00"+comment] = *cnt
	})
	return m, err
}

func eachCountedRule(c Conn, fn func(chain, comment string, v expr.VerdictKind, cnt *expr.Counter)) error {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("listing nftables chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != Table {
			continue
		}
		rules, err := c.GetRules(table, ch)
		if err != nil {
			return fmt.Errorf("listing rules of %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			var cnt *expr.Counter
			v := expr.VerdictKind(-100)
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Counter:
					cnt = e
				case *expr.Verdict:
					v = e.Kind
				}
			}
			if cnt != nil && comment != "" {
				fn(ch.Name, comment, v, cnt)
			}
		}
	}
	return nil
}
