// Package config carries the generated manifests (CRDs, RBAC, webhook configurations) as data,
// so that the binaries (podsg local up) and the test harness install exactly what is committed
// here instead of a second copy.
package config

import "embed"

// CRDs holds config/crd/bases/*.yaml.
//
//go:embed crd/bases/*.yaml
var CRDs embed.FS

// CRDDir is the directory of CRDs inside CRDs.
const CRDDir = "crd/bases"

// WebhookManifests is webhook/manifests.yaml, generated from the +kubebuilder:webhook markers:
// one MutatingWebhookConfiguration and one ValidatingWebhookConfiguration. podsg-controller
// registers exactly these when it manages its own configurations.
//
//go:embed webhook/manifests.yaml
var WebhookManifests []byte

// Install holds the kustomizations an AWS user applies (crd, rbac, controller, agent; webhook
// for reference), so that `podsg local up` installs podsg from exactly these files: it writes
// them out beside a small overlay of what differs locally and runs `kubectl apply -k`.
//
//go:embed crd rbac controller agent webhook
var Install embed.FS
