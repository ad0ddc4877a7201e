package images

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// NFTBin is where Debian's nftables package puts nft; AgentNFT is where the agent image holds
// it, on the image's PATH (DefaultPath), since the agent runs `nft` from its PATH
// (internal/policyenforce) to enforce network policy.
const (
	NFTBin   = "/usr/sbin/nft"
	AgentNFT = "/usr/local/bin/nft"
)

// DynamicFiles is a dynamically linked host binary, at path at in the image, plus every
// shared library and the program interpreter that ldd resolves for it, each at the path the
// loader looks for it. The image then needs no distribution base: the loader finds the same
// files at the same places as on the host. A library ldd cannot find fails the call, so an image
// never holds a binary that cannot start.
func DynamicFiles(bin, at string) ([]File, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, bytes.TrimSpace(out))
	}
	libs, err := parseLDD(out)
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	files := []File{{Path: at, Source: bin}}
	for _, l := range libs {
		files = append(files, File{Path: l, Source: l})
	}
	return files, nil
}

// parseLDD returns the absolute paths ldd names: "libx.so.1 => /lib/…/libx.so.1 (0x…)" for a
// library, "/lib64/ld-linux-x86-64.so.2 (0x…)" for the interpreter. The vDSO has no file.
func parseLDD(out []byte) ([]string, error) {
	var paths []string
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.Contains(line, "statically linked") {
			continue
		}
		if name, target, ok := strings.Cut(line, "=>"); ok {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("library %s not found", strings.TrimSpace(name))
			}
			line = target
		}
		p, _, _ := strings.Cut(line, " ")
		if filepath.IsAbs(p) {
			paths = append(paths, p)
		}
	}
	return paths, s.Err()
}
