package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/config"
	"github.com/podsg/podsg/internal/images"
)

// In-cluster install (the default): podsg runs in the local cluster as the README tells an
// AWS user to run it, from config/'s kustomizations and the images `podsg images save`
// writes. Only what differs locally is patched, by an overlay (installOverlay).

// hostDirs are the host paths the agent DaemonSet's hostPath volumes name. Each node sees its
// own (cluster.NodeOptions.PrivateHostDirs), as each EC2 instance has its own disk.
var hostDirs = []string{"/opt/cni/bin", "/etc/cni/net.d", "/run/podsg", "/var/lib/podsg/pods"}

// podsgImages are the images of podsg-agent (with the host's nft, for --network-policy) and
// podsg-controller, as `podsg images save` builds them, for every node's containerd: the local stand-in for a registry.
func (o *Options) podsgImages() ([]images.Image, error) {
	nft, err := images.DynamicFiles(images.NFTBin, images.AgentNFT)
	if err != nil {
		return nil, fmt.Errorf("the agent image's nft (Debian: nftables): %w", err)
	}
	var out []images.Image
	for _, img := range []images.Image{
		images.AgentImage(filepath.Join(o.BinDir, "podsg-agent"), filepath.Join(o.BinDir, "podsg-cni"), images.CABundle, nft),
		images.ControllerImage(filepath.Join(o.BinDir, "podsg-controller"), images.CABundle),
	} {
		r, err := images.Rendered(img)
		if err != nil {
			return nil, fmt.Errorf("writing image %s: %w", img.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// installOverlay is the kustomization that applies config/ (crd, controller, agent) with the
// local differences:
//   - images: imported on every node, never pulled (Never: no registry to pull from); the
//     agent's init container runs podsg's busybox instead of Docker Hub's, which the VPC cannot
//     reach (what the manifest's comment tells users without internet access to do).
//   - the cluster's name, and the EC2 endpoint: the local VPC's, as instances reach it (the
//     flag every binary has for it); podsg-controller also gets the VPC id, the local VPC's
//     endpoint for pods with IAM roles, and the short branch cool-down the host-process mode
//     uses.
//   - the agent: vxlan sub-interfaces, as the local VPC's trunks carry (VLAN on AWS). It
//     enforces network policy as config/agent has it by default (--network-policy; its image
//     carries the host's nft, podsgImages).
func installOverlay(vpcID string) string {
	busybox, tag, _ := strings.Cut(images.Busybox, ":")
	return `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../config/crd
- ../config/controller
- ../config/agent
images:
- name: busybox
  newName: ` + busybox + `
  newTag: ` + tag + `
patches:
- target:
    kind: Deployment
    name: podsg-controller
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
    - op: replace
      path: /spec/template/spec/containers/0/env/0
      value: {name: CLUSTER_NAME, value: ` + ClusterName + `}
    - op: replace
      path: /spec/template/spec/containers/0/env/1
      value: {name: AWS_REGION, value: ` + Region + `}
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --ec2-endpoint=` + VPCEndpoint + `
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --vpc-id=` + vpcID + `
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --local-vpc-endpoint=` + PodVPCEndpoint + `
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --branch-cooldown=30s
- target:
    kind: DaemonSet
    name: podsg-agent
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
    - op: add
      path: /spec/template/spec/initContainers/0/imagePullPolicy
      value: Never
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --ec2-endpoint=` + VPCEndpoint + `
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --subif-driver=vxlan
`
}

// writeInstall writes config/'s kustomizations (as embedded in this podsg) and the overlay
// into the state dir; it returns the overlay's directory, for `kubectl apply -k`.
func (o *Options) writeInstall(vpcID string) (string, error) {
	root := o.path("install")
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	err := fs.WalkDir(config.Install, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(root, "config", p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := config.Install.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		return "", fmt.Errorf("writing config/ to %s: %w", root, err)
	}
	local := filepath.Join(root, "local")
	if err := os.MkdirAll(local, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(local, "kustomization.yaml"), []byte(installOverlay(vpcID)), 0o600); err != nil {
		return "", err
	}
	return local, nil
}

// installPodsg applies the CRDs, RBAC, podsg-controller's Deployment and Service and the
// agent DaemonSet, as `kubectl apply -k` of config/ with the local overlay.
func (o *Options) installPodsg(ctx context.Context, kubectl kubectlFunc, vpcID string) error {
	dir, err := o.writeInstall(vpcID)
	if err != nil {
		return err
	}
	if _, err := kubectl(ctx, "", "apply", "-k", dir); err != nil {
		return fmt.Errorf("installing podsg (config/ with the overlay %s): %w", dir, err)
	}
	return nil
}

// waitPodsg waits until every node runs a ready podsg-agent and podsg-controller's Deployment
// is rolled out with all its replicas ready (each serves the webhooks: readyz).
func (o *Options) waitPodsg(ctx context.Context, kubectl kubectlFunc) error {
	for _, w := range []struct{ what, kind string }{
		{"the podsg-agent DaemonSet", "daemonset/podsg-agent"},
		{"the podsg-controller Deployment", "deployment/podsg-controller"},
	} {
		var last string
		err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			out, err := kubectl(ctx, "", "rollout", "status", "--namespace=podsg-system", "--watch=false", w.kind)
			last = strings.TrimSpace(out)
			return err == nil && strings.Contains(out, "successfully rolled out"), nil
		})
		if err != nil {
			pods, _ := kubectl(ctx, "", "get", "pods", "--namespace=podsg-system", "-o", "wide")
			return fmt.Errorf("waiting for %s (%s):\n%s: %w", w.what, last, pods, err)
		}
	}
	return nil
}

type kubectlFunc = func(ctx context.Context, stdin string, args ...string) (string, error)

// recordHostDirs notes which of hostDirs (and their parents) do not exist yet, before the
// nodes create them as mount points, so that Down removes exactly those and no directory the
// machine had before (Debian's containerd package may ship /etc/cni/net.d).
func (o *Options) recordHostDirs() error {
	if o.HostProcesses {
		return nil
	}
	var made []string
	if data, err := os.ReadFile(o.path("host-dirs.json")); err == nil {
		_ = json.Unmarshal(data, &made) // an unreadable record: only this run's are known
	}
	seen := map[string]bool{}
	for _, d := range made {
		seen[d] = true
	}
	for _, d := range hostDirs {
		for p := d; p != "/" && !seen[p]; p = filepath.Dir(p) {
			if _, err := os.Stat(p); err == nil {
				break
			}
			made, seen[p] = append(made, p), true
		}
	}
	return writeJSON(o.path("host-dirs.json"), made)
}

// removeHostDirs removes the host directories Up created (recordHostDirs), deepest first,
// where empty: the mount points of the nodes' own directories, which no node uses any more.
func (o *Options) removeHostDirs(context.Context) error {
	data, err := os.ReadFile(o.path("host-dirs.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var made []string
	if err := json.Unmarshal(data, &made); err != nil {
		return fmt.Errorf("parsing %s: %w", o.path("host-dirs.json"), err)
	}
	sort.Slice(made, func(i, j int) bool { return len(made[i]) > len(made[j]) })
	var errs []error
	for _, d := range made {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s, which up created: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
