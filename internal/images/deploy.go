package images

import (
	"fmt"
	"os"
	"path/filepath"
)

// The images of podsg's own binaries, for a real cluster: config/agent and config/controller
// run them (`podsg images save`, `make images`).
//
// The manifests say podsg-agent:latest and podsg-controller:latest; these are the same
// references as the container runtime normalizes them. `ctr images import` stores the name an
// archive carries verbatim, while containerd's CRI normalizes a pod's image reference before
// looking it up, so an archive named plainly podsg-agent:latest would import fine and then
// never be found by the kubelet.
const (
	Agent      = "docker.io/library/podsg-agent:latest"
	Controller = "docker.io/library/podsg-controller:latest"
)

// Paths inside the images; config/agent/daemonset.yaml names AgentBin (command) and CNIBin
// (--cni-bin-source), config/controller/deployment.yaml relies on ControllerBin being the
// entrypoint.
const (
	AgentBin      = "/usr/local/bin/podsg-agent"
	CNIBin        = "/usr/local/bin/podsg-cni"
	ControllerBin = "/usr/local/bin/podsg-controller"
)

// CABundle is the first file Go's crypto/x509 reads for root certificates on Linux, and where
// Debian's ca-certificates keeps the host's. Both binaries call EC2 (and STS with IRSA) over
// HTTPS; an image with only a static binary would fail every call with "certificate signed by
// unknown authority".
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

// NonRootUser is the controller's user (the uid distroless calls nonroot): its Deployment sets
// runAsNonRoot, which kubelet can only verify against a numeric image user.
const NonRootUser = "65532:65532"

// AgentImage holds the static podsg-agent and podsg-cni binaries, a CA bundle and nft (nft:
// DynamicFiles of the host's NFTBin, the binary and its libraries), and runs the agent. No shell
// and no other tools: the agent execs only nft (--network-policy), and it installs podsg-cni on
// the host by copying it out of the image (--cni-bin-source). It runs as root, as its DaemonSet
// requires (host directories, netlink).
func AgentImage(agentBin, cniBin, caBundle string, nft []File) Image {
	return Image{
		Name: Agent,
		Files: append([]File{
			{Path: AgentBin, Source: agentBin},
			{Path: CNIBin, Source: cniBin},
			{Path: CABundle, Source: caBundle, Mode: 0o644},
		}, nft...),
		Entrypoint: []string{AgentBin},
	}
}

// ControllerImage holds the static podsg-controller binary and a CA bundle, and runs the
// controller as NonRootUser. The webhook certificate goes to the Deployment's emptyDir
// (--webhook-cert-dir), so the read-only root file system needs nothing writable.
func ControllerImage(bin, caBundle string) Image {
	return Image{
		Name: Controller,
		Files: []File{
			{Path: ControllerBin, Source: bin},
			{Path: CABundle, Source: caBundle, Mode: 0o644},
		},
		Entrypoint: []string{ControllerBin},
		User:       NonRootUser,
	}
}

// SaveArchive writes img's archive (WriteArchive) to path, through a temporary file in the
// same directory renamed into place, so that an interrupted save never leaves a truncated
// archive that an import would half-read.
func SaveArchive(path string, img Image) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("saving %s: %w", img.Name, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := WriteArchive(f, img); err != nil {
		return fmt.Errorf("saving %s to %s: %w", img.Name, path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("saving %s to %s: %w", img.Name, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving %s to %s: %w", img.Name, path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("saving %s to %s: %w", img.Name, path, err)
	}
	return nil
}
