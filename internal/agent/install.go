package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/podsg/podsg/internal/cni"
)

// ConflistName is the file the agent writes in the CNI configuration directory; "10-" sorts it
// before the runtime's defaults.
const ConflistName = "10-podsg.conflist"

// installCNI copies the plugin binary into binDir and writes the conflist into confDir, both
// atomically (write then rename), so that the runtime never executes a half-written binary or
// reads a half-written configuration.
func installCNI(binSource, binDir, confDir string, conf cni.NetConf) error {
	if binSource != "" {
		if err := copyFileAtomic(binSource, filepath.Join(binDir, "podsg-cni"), 0o755); err != nil {
			return fmt.Errorf("installing the CNI plugin: %w", err)
		}
	}
	conf.Type = "podsg-cni"
	list := map[string]any{"cniVersion": conf.CNIVersion, "name": conf.Name, "plugins": []any{conf}}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(confDir, ConflistName), data, 0o644); err != nil {
		return fmt.Errorf("writing the CNI configuration: %w", err)
	}
	return nil
}

func copyFileAtomic(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	return writeFileAtomic(dst, data, mode)
}

func writeFileAtomic(dst string, data []byte, mode os.FileMode) error {
	// Container runtimes read these directories as whatever user they run as.
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil { //nolint:gosec // CNI conf and bin dirs are world-readable by convention
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
