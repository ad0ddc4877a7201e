// Package agent is the node agent (podsg-agent): it learns its instance from IMDS, keeps a warm
// pool of secondary IPs, asks for a trunk ENI by labelling its node, and serves the CNI plugin.
package agent
