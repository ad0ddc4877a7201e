// Package images builds small OCI image archives from local files, with no registry and no
// Docker, and imports them into a containerd. The local cluster's nodes run only these images
// (pods use imagePullPolicy Never or IfNotPresent), so the machine never needs a registry.
package images
