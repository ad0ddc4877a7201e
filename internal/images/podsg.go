package images

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// The images every local-cluster node holds.
const (
	Pause   = "podsg.local/pause:latest"
	PGCheck = "podsg.local/pgcheck:latest"
	Busybox = "podsg.local/busybox:latest"
	CoreDNS = "podsg.local/coredns:latest"
)

// BusyboxBin is Debian busybox-static's binary.
const BusyboxBin = "/bin/busybox"

// BusyboxFiles is /bin/busybox plus a /bin symlink per applet, so that `sh`, `ls`, `wget`...
// resolve inside the image like on a normal system.
func BusyboxFiles(busybox string) ([]File, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	files := []File{{Path: "/bin/busybox", Source: busybox}}
	applets := strings.Fields(string(bytes.TrimSpace(out)))
	sort.Strings(applets)
	for _, a := range applets {
		if a != "busybox" {
			files = append(files, File{Path: "/bin/" + a, Symlink: "busybox"})
		}
	}
	return files, nil
}

// PauseImage is the pod sandbox image: a busybox shell that waits until SIGTERM. Busybox
// rather than a dedicated binary because the project ships no pause program; the shell
// exits at once on TERM, so sandboxes stop without waiting for a kill timeout.
func PauseImage(busybox string) Image {
	return Image{
		Name:       Pause,
		Files:      []File{{Path: "/bin/busybox", Source: busybox}, {Path: "/bin/sh", Symlink: "busybox"}, {Path: "/bin/sleep", Symlink: "busybox"}},
		Entrypoint: []string{"/bin/sh", "-c", `trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done`},
	}
}

// BusyboxImage is a general-purpose shell image; its default command keeps it running so that
// `kubectl exec` has something to enter.
func BusyboxImage(files []File) Image {
	return Image{Name: Busybox, Files: files, Cmd: []string{"/bin/sh", "-c", `trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done`}}
}

// PGCheckImage holds the static pgcheck binary (cmd/pgcheck) and busybox, so that a person can
// also `kubectl exec` into the tutorial's pod and look around.
func PGCheckImage(pgcheck string, busybox []File) Image {
	files := append([]File{{Path: "/usr/local/bin/pgcheck", Source: pgcheck}}, busybox...)
	return Image{Name: PGCheck, Files: files, Entrypoint: []string{"/usr/local/bin/pgcheck"}}
}

// CoreDNSImage holds the static coredns binary hack/kube-bin.sh builds from its Go module, as
// /coredns, the path and entrypoint of the upstream image, so manifests written for that image
// (args: ["-conf", "/etc/coredns/Corefile"]) work unchanged.
func CoreDNSImage(coredns string) Image {
	return Image{Name: CoreDNS, Files: []File{{Path: "/coredns", Source: coredns}}, Entrypoint: []string{"/coredns"}}
}
