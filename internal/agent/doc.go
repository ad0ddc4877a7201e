// Package agent is the node agent (podsg-agent): it learns its instance from IMDS, keeps a warm
// pool of secondary IPs, asks for a trunk ENI by labelling its node, serves the CNI plugin, and
// enforces network policy on the node's pods (internal/policyenforce; a pod's ADD returns once
// its rules are installed).
package agent
