package explain

import (
	"fmt"
	"strings"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/reach"
)

// trafficFindings warn when the branch pod's groups keep out what every pod needs: DNS to the
// cluster's resolver and its probes from the kubelet (AWS's advice for security groups for
// pods). Paths that pass say nothing.
func trafficFindings(r *Report) []Finding {
	t := r.Traffic
	if t == nil {
		return nil
	}
	var out []Finding
	if t.DNSErr != "" {
		out = append(out, problem("DNS from the pod could not be checked: %s.", t.DNSErr))
	}
	for _, p := range t.DNS {
		if f, ok := dnsFinding(p); ok {
			out = append(out, f)
		}
	}
	return append(out, probeFindings(r.Pod.Probes, t)...)
}

func dnsFinding(p DNSPath) (Finding, bool) {
	if p.Err != "" {
		return problem("DNS from the pod to CoreDNS pod %s could not be checked: %s.", p.Resolver, p.Err), true
	}
	var egress, ingress []string
	for _, proto := range []string{cloud.ProtocolUDP, cloud.ProtocolTCP} {
		v := reach.Evaluate(p.Input, reach.Flow{Protocol: proto, Port: dnsPort})
		if v.Allowed {
			continue
		}
		if !v.Egress.Allowed() {
			egress = append(egress, v.Flow.String())
		}
		if !v.Ingress.Allowed() {
			ingress = append(ingress, v.Flow.String())
		}
	}
	if len(egress) == 0 && len(ingress) == 0 {
		return Finding{}, false
	}
	in := p.Input
	var why []string
	if len(egress) > 0 {
		why = append(why, fmt.Sprintf("the pod's groups %s allow no egress of %s to it", groupList(in.Src.ENI.SecurityGroups), strings.Join(egress, ", ")))
	}
	if len(ingress) > 0 {
		why = append(why, fmt.Sprintf("its groups %s admit no %s from the pod", groupList(in.Dst.ENI.SecurityGroups), strings.Join(ingress, ", ")))
	}
	return problem("DNS is blocked from the pod (%s on %s) to CoreDNS pod %s (%s on %s): %s, so the pod cannot resolve names. "+
		"Allow udp and tcp 53 to and from the cluster security group, as AWS advises for pods with security groups "+
		"(podsg reach %s %s --protocol udp --port 53 shows the rules).",
		in.Src.IP, in.Src.ENI.ID, p.Resolver, in.Dst.IP, in.Dst.ENI.ID, strings.Join(why, "; "), in.Src.IP, in.Dst.IP), true
}

// probeFindings warn for every probe the kubelet cannot deliver: from the node's primary
// address through the node's groups, into the pod through the pod's.
func probeFindings(ps []Probe, t *Traffic) []Finding {
	var out []Finding
	for _, p := range ps {
		what := fmt.Sprintf("The %s probe of container %s (%s", p.Kind, p.Container, p.Handler)
		switch {
		case p.Port == 0:
			out = append(out, problem("%s, port %q) names no port of the container: the kubelet cannot probe it.", what, p.PortName))
			continue
		case t.KubeletErr != "":
			out = append(out, problem("%s, tcp %d) could not be checked: %s.", what, p.Port, t.KubeletErr))
			continue
		case t.Kubelet == nil:
			continue
		}
		v := reach.Evaluate(*t.Kubelet, reach.Flow{Protocol: cloud.ProtocolTCP, Port: p.Port})
		if v.Allowed {
			continue
		}
		in := *t.Kubelet
		var why []string
		if !v.Egress.Allowed() {
			why = append(why, fmt.Sprintf("the node's groups %s allow no egress of tcp %d to the pod", groupList(in.Src.ENI.SecurityGroups), p.Port))
		}
		if !v.Ingress.Allowed() {
			why = append(why, fmt.Sprintf("the pod's groups %s admit no tcp %d from the node", groupList(in.Dst.ENI.SecurityGroups), p.Port))
		}
		out = append(out, problem("%s, tcp %d) comes from the kubelet at the node's address %s (%s): %s, so the probe fails. "+
			"Allow tcp %d in from the node's security groups (the cluster security group) in one of the pod's groups.",
			what, p.Port, in.Src.IP, in.Src.ENI.ID, strings.Join(why, "; "), p.Port))
	}
	return out
}
