package images

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
)

// Importer loads archives into one containerd, in the namespace the CRI plugin reads.
type Importer struct {
	// Ctr is the ctr binary; "" means "ctr" from PATH.
	Ctr string
	// Address is containerd's gRPC socket.
	Address string
	// Snapshotter must match the CRI plugin's, so that the layers are unpacked where the
	// kubelet's containers will look for them.
	Snapshotter string
}

// Import writes img as an archive and pipes it to `ctr images import`.
func (i Importer) Import(ctx context.Context, img Image) error {
	var archive bytes.Buffer
	if err := WriteArchive(&archive, img); err != nil {
		return err
	}
	ctr := i.Ctr
	if ctr == "" {
		ctr = "ctr"
	}
	args := []string{"-a", i.Address, "-n", "k8s.io", "images", "import"}
	if i.Snapshotter != "" {
		args = append(args, "--snapshotter", i.Snapshotter)
	}
	cmd := exec.CommandContext(ctx, ctr, append(args, "-")...)
	cmd.Stdin = &archive
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("importing %s: %w: %s", img.Name, err, bytes.TrimSpace(out))
	}
	return nil
}
