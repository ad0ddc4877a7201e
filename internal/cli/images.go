package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/podsg/podsg/internal/images"
)

func newImages() *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "Container images of podsg-agent and podsg-controller, built without a registry or Docker"}
	var out, binDir, caBundle, nft string
	self, _ := os.Executable()
	save := &cobra.Command{
		Use:   "save",
		Short: "Write podsg-agent.tar and podsg-controller.tar, the images config/agent and config/controller run",
		Long: `Write two image archives into --out, built from the static binaries in --bin-dir
(make build) and the host's CA bundle:

  podsg-agent.tar       /usr/local/bin/podsg-agent (entrypoint), /usr/local/bin/podsg-cni, and
                        the host's nft (--nft) as /usr/local/bin/nft with the shared libraries
                        it needs (ldd), for the agent's network policy enforcement
  podsg-controller.tar  /usr/local/bin/podsg-controller (entrypoint), user 65532

Each is an OCI image layout in a tar (not a "docker save" archive: there is no manifest.json).
It is named docker.io/library/podsg-agent:latest (…-controller), which is what the manifests'
podsg-agent:latest means to a container runtime. To use it:

  into each node's containerd:  ctr -n k8s.io images import podsg-agent.tar
  into a registry (e.g. ECR):   skopeo copy oci-archive:podsg-agent.tar docker://REGISTRY/podsg-agent:TAG
                                then an overlay with images: [{name: podsg-agent, newName: …, newTag: TAG}]

The same inputs give byte-identical archives.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return saveImages(out, binDir, caBundle, nft, cmd.OutOrStdout())
		},
	}
	save.Flags().StringVar(&out, "out", "", "directory to write the archives into (created if missing; required)")
	save.Flags().StringVar(&binDir, "bin-dir", filepath.Dir(self), "podsg's static binaries (make build puts them in bin/)")
	save.Flags().StringVar(&caBundle, "ca-bundle", images.CABundle, "CA certificates for the images, which call EC2 over HTTPS (Debian: ca-certificates)")
	save.Flags().StringVar(&nft, "nft", images.NFTBin, "the nft binary for the agent image, copied with its shared libraries (Debian: nftables); \"\" leaves it out, and the agent then cannot enforce --network-policy")
	cmd.AddCommand(save)
	return cmd
}

// saveImages writes both archives into out and reports each on w.
func saveImages(out, binDir, caBundle, nft string, w io.Writer) error {
	if out == "" {
		return errors.New("--out is required")
	}
	// Checked up front, so that a missing CA bundle is reported as such and not as a failed
	// layer of the first image.
	if _, err := os.Stat(caBundle); err != nil {
		return fmt.Errorf("--ca-bundle: %w (install ca-certificates or pass another bundle)", err)
	}
	var nftFiles []images.File
	if nft != "" {
		var err error
		if nftFiles, err = images.DynamicFiles(nft, images.AgentNFT); err != nil {
			return fmt.Errorf("--nft: %w (install nftables, or pass --nft \"\" for an agent that does not enforce network policy)", err)
		}
	}
	if err := os.MkdirAll(out, 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	bin := func(name string) string { return filepath.Join(binDir, name) }
	for _, a := range []struct {
		file string
		img  images.Image
	}{
		{"podsg-agent.tar", images.AgentImage(bin("podsg-agent"), bin("podsg-cni"), caBundle, nftFiles)},
		{"podsg-controller.tar", images.ControllerImage(bin("podsg-controller"), caBundle)},
	} {
		p := filepath.Join(out, a.file)
		if err := images.SaveArchive(p, a.img); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "wrote %s (%s)\n", p, a.img.Name); err != nil {
			return err
		}
	}
	return nil
}
