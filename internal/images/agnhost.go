package images

import "fmt"

// The test image of Kubernetes' e2e suite and of the Network Policy API's conformance tests.
// Both run registry.k8s.io/e2e-test-images/agnhost (the e2e suite at the tag its Kubernetes
// version pins, e2e.test --list-images; the network-policy-api conformance at AgnhostNPAPI,
// written into its manifests), with imagePullPolicy IfNotPresent: imported into every node under
// those names, the image is never pulled.
const (
	AgnhostRepository = "registry.k8s.io/e2e-test-images/agnhost"
	AgnhostNPAPI      = AgnhostRepository + ":2.45"
	// AgnhostBin is where the image holds the agnhost program; /agnhost, the path the tests
	// call, is the program itself or, on a kernel without SCTP, agnhostNoSCTP in front of it.
	AgnhostBin = "/usr/local/bin/agnhost"
)

// agnhostNoSCTP runs agnhost with the SERVE_SCTP_PORT_* variables removed when the kernel has no
// SCTP (socket(…, IPPROTO_SCTP) fails with EPROTONOSUPPORT, and /proc/net/protocols lists no
// SCTP). Without it, `agnhost porter` exits at its first SCTP listen ("Failed to listen SCTP"),
// so a network-policy-api conformance pod, which has porter containers for SCTP ports beside
// its TCP and UDP servers, never becomes Ready, and no conformance test runs at all. With it,
// those containers run and serve nothing; a test that pokes SCTP fails (the connection cannot
// be made), so SCTP results are not faked, only kept from blocking the rest.
const agnhostNoSCTP = `#!/bin/bash
if [ "$1" = porter ] && ! grep -q '^SCTP' /proc/net/protocols; then
  for v in ${!SERVE_SCTP_PORT_*}; do unset "$v"; done
fi
exec ` + AgnhostBin + ` "$@"
`

// AgnhostImage is the agnhost test image, assembled from local files under the reference name:
// the static agnhost binary (hack/e2e-bin.sh builds it from the Kubernetes module) at /agnhost,
// its entrypoint, and bash (DynamicFiles of the host's /bin/bash), since the Network Policy
// API's conformance pods run `/bin/bash -c "/agnhost serve-hostname …"`. The tests use only
// agnhost's own subcommands (porter, serve-hostname, connect), none of the upstream image's
// Alpine tools. One agnhost build serves every tag: the subcommands those tests call take the
// same arguments in 2.45 as in the version of the Kubernetes release. kernelSCTP false puts
// agnhostNoSCTP at /agnhost.
func AgnhostImage(name, agnhost string, bash []File, kernelSCTP bool) (Image, error) {
	if len(bash) == 0 || bash[0].Path != "/bin/bash" {
		return Image{}, fmt.Errorf("agnhost image %s: bash must be /bin/bash (DynamicFiles)", name)
	}
	files := append([]File{{Path: AgnhostBin, Source: agnhost}}, bash...)
	if kernelSCTP {
		files = append(files, File{Path: "/agnhost", Symlink: AgnhostBin})
	} else {
		files = append(files, File{Path: "/agnhost", Data: []byte(agnhostNoSCTP)})
	}
	return Image{Name: name, Files: files, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}, nil
}
