package localcluster

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/config"
	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/testenv"
)

// TestInstallOverlay renders what `podsg local up` applies (config/ with the local overlay)
// with the cluster's own kubectl and checks that the overlay changes only the local
// differences, and that every host path the agent DaemonSet mounts is one the nodes keep to
// themselves: a hostPath volume added to config/agent without a place in hostDirs would be
// shared by all nodes of the machine.
func TestInstallOverlay(t *testing.T) {
	kubectl := filepath.Join(testenv.KubeBinDir(t), "kubectl")
	o := Options{StateDir: t.TempDir()}
	dir, err := o.writeInstall("vpc-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	var ds appsv1.DaemonSet
	var deploy appsv1.Deployment
	kinds := map[string]int{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		kinds[meta.Kind]++
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(doc), 4096)
		switch meta.Kind {
		case "DaemonSet":
			err = dec.Decode(&ds)
		case "Deployment":
			err = dec.Decode(&deploy)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"CustomResourceDefinition", "Namespace", "ClusterRole", "Deployment", "Service", "DaemonSet", "ConfigMap"} {
		if kinds[k] == 0 {
			t.Errorf("rendered install has no %s (kinds %v)", k, kinds)
		}
	}

	// config/crd's kustomization lists its files by name: one added to bases/ (which the
	// host-process install applies) must be listed too.
	if bases, _ := config.CRDs.ReadDir(config.CRDDir); kinds["CustomResourceDefinition"] != len(bases) {
		t.Errorf("rendered install has %d CRDs, config/%s %d: list the new ones in config/crd/kustomization.yaml", kinds["CustomResourceDefinition"], config.CRDDir, len(bases))
	}
	agent := ds.Spec.Template.Spec
	for _, v := range agent.Volumes {
		if v.HostPath != nil && !slices.Contains(hostDirs, v.HostPath.Path) {
			t.Errorf("agent hostPath volume %s (%s) is not among the nodes' own directories %v", v.Name, v.HostPath.Path, hostDirs)
		}
	}
	if len(agent.InitContainers) != 1 || agent.InitContainers[0].Image != images.Busybox || agent.InitContainers[0].ImagePullPolicy != corev1.PullNever {
		t.Errorf("agent init containers %+v, want one running %s, never pulled", agent.InitContainers, images.Busybox)
	}
	wantArgs(t, "podsg-agent", agent.Containers[0], corev1.PullNever, "--ec2-endpoint="+VPCEndpoint, "--subif-driver=vxlan", "--enable-pod-eni", "--network-policy")

	if deploy.Spec.Replicas == nil || *deploy.Spec.Replicas != 2 {
		t.Errorf("podsg-controller replicas %v, want 2", deploy.Spec.Replicas)
	}
	ctrl := deploy.Spec.Template.Spec.Containers[0]
	wantArgs(t, "podsg-controller", ctrl, corev1.PullNever, "--leader-elect", "--ec2-endpoint="+VPCEndpoint, "--vpc-id=vpc-0123456789abcdef0")
	for _, a := range ctrl.Args {
		if strings.HasPrefix(a, "--webhook-host") {
			t.Errorf("podsg-controller has %s: in-cluster its webhooks are reached through the Service", a)
		}
	}
	if ctrl.Env[0].Name != "CLUSTER_NAME" || ctrl.Env[0].Value != ClusterName {
		t.Errorf("podsg-controller env %+v, want CLUSTER_NAME=%s first", ctrl.Env, ClusterName)
	}
}

func wantArgs(t *testing.T, name string, c corev1.Container, pull corev1.PullPolicy, args ...string) {
	t.Helper()
	if c.ImagePullPolicy != pull {
		t.Errorf("%s imagePullPolicy %s, want %s", name, c.ImagePullPolicy, pull)
	}
	for _, a := range args {
		if !slices.Contains(c.Args, a) {
			t.Errorf("%s args %v lack %s", name, c.Args, a)
		}
	}
}
