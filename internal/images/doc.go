// Package images builds small OCI image archives from local files, with no registry and no
// Docker, and imports them into a containerd. The local cluster's nodes run only these images
// (pods use imagePullPolicy Never or IfNotPresent), so the machine never needs a registry; the
// same builder makes the podsg-agent and podsg-controller images for a real cluster
// (deploy.go, `podsg images save`).
package images
