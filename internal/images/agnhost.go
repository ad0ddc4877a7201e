package images

// The test image of Kubernetes' e2e suite and of the Network Policy API's conformance tests.
// Both run registry.k8s.io/e2e-test-images/agnhost (the e2e suite at the tag its Kubernetes
// version pins, e2e.test --list-images; the network-policy-api conformance at AgnhostNPAPI,
// written into its manifests), with imagePullPolicy IfNotPresent: imported into every node under
// those names, the image is never pulled.
const (
	AgnhostRepository = "registry.k8s.io/e2e-test-images/agnhost"
	AgnhostNPAPI      = AgnhostRepository + ":2.45"
)

// AgnhostImage is the agnhost test image, assembled from local files under the reference name:
// the static agnhost binary (hack/e2e-bin.sh builds it from the Kubernetes module) at /agnhost,
// its entrypoint, and bash (DynamicFiles of the host's /bin/bash), since the Network Policy
// API's conformance pods run `/bin/bash -c "/agnhost serve-hostname …"`. The tests use only
// agnhost's own subcommands (porter, serve-hostname, connect), none of the upstream image's
// Alpine tools. One agnhost build serves every tag: the subcommands those tests call take the
// same arguments in 2.45 as in the version of the Kubernetes release.
func AgnhostImage(name, agnhost string, bash []File) Image {
	return Image{
		Name:       name,
		Files:      append([]File{{Path: "/agnhost", Source: agnhost}}, bash...),
		Entrypoint: []string{"/agnhost"},
		Cmd:        []string{"pause"},
	}
}
