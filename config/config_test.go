package config_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/testenv"
)

// kustomizations returns every directory under config/ with a kustomization.yaml, so that a
// new one is checked without touching this test.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The deployable ones at least; more may come.
	for _, want := range []string{"agent", "controller", "rbac"} {
		if !slices.Contains(dirs, want) {
			t.Fatalf("kustomizations %v lack config/%s", dirs, want)
		}
	}
	return dirs
}

// TestManifestsApply renders every kustomization with the cluster's own kubectl and has a real
// kube-apiserver (with podsg's CRDs) validate the result in a server-side dry run, with unknown
// fields rejected: what `kubectl apply -k config/...` does on a cluster, minus the writes.
func TestManifestsApply(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	// config/controller creates it, and config/agent is applied after it; a dry run does not
	// persist the namespace, so the namespaced objects would be rejected without it.
	if _, err := env.Kubectl(ctx, "", "create", "namespace", "podsg-system"); err != nil {
		t.Fatal(err)
	}
	apply := func(manifests string) (string, error) {
		return env.Kubectl(ctx, manifests, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
	}
	rendered := map[string]string{}
	for _, dir := range kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			manifests, err := env.Kubectl(ctx, "", "kustomize", dir)
			if err != nil {
				t.Fatal(err)
			}
			rendered[dir] = manifests
			out, err := apply(manifests)
			if err != nil {
				t.Fatalf("%v\n%s", err, manifests)
			}
			// One line per object, each accepted by the server.
			objects := strings.Count("\n"+manifests, "\nkind: ")
			if lines := strings.Count(out, "(server dry run)"); objects == 0 || lines != objects {
				t.Errorf("%d objects rendered, %d accepted:\n%s", objects, lines, out)
			}
		})
	}

	// The check can fail: the same manifests with a misspelled field are rejected.
	t.Run("misspelled field is rejected", func(t *testing.T) {
		broken := strings.Replace(rendered["agent"], "imagePullPolicy:", "imagePullPolcy:", 1)
		if broken == rendered["agent"] {
			t.Fatal("config/agent renders no imagePullPolicy to misspell")
		}
		if _, err := apply(broken); err == nil || !strings.Contains(err.Error(), "imagePullPolcy") {
			t.Fatalf("apply of a misspelled field = %v, want an error naming it", err)
		}
	})
}

// normalized is an image reference as the container runtime resolves it (docker.io, library/).
func normalized(ref string) string {
	first, rest, found := strings.Cut(ref, "/")
	if !found {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + first + "/" + rest
	}
	return ref
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

func readObject(t *testing.T, path string, obj any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestManifestsRunTheBuiltImages: the manifests name the images `podsg images save` builds, and
// run what is in them: the agent's command and plugin source, the controller's entrypoint as a
// non-root user; the agent's probes reach the address its --health-addr binds.
func TestManifestsRunTheBuiltImages(t *testing.T) {
	agentImg, controllerImg := images.AgentImage("a", "c", "ca", nil), images.ControllerImage("c", "ca")

	var ds appsv1.DaemonSet
	readObject(t, "agent/daemonset.yaml", &ds)
	agent := container(t, ds.Spec.Template.Spec, "agent")
	if normalized(agent.Image) != agentImg.Name || agent.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("agent image %s (%s), want %s resolving to %s, IfNotPresent", agent.Image, agent.ImagePullPolicy, agent.Image, agentImg.Name)
	}
	if !reflect.DeepEqual(agent.Command, agentImg.Entrypoint) {
		t.Errorf("agent command %q, want the image's %q", agent.Command, agentImg.Entrypoint)
	}
	if !slices.Contains(agent.Args, "--cni-bin-source="+images.CNIBin) {
		t.Errorf("agent args %q lack --cni-bin-source=%s", agent.Args, images.CNIBin)
	}
	if !slices.Contains(agent.Args, "--health-addr=127.0.0.1:8482") {
		t.Errorf("agent args %q lack --health-addr=127.0.0.1:8482", agent.Args)
	}
	// On by default (the comment in daemonset.yaml says why); the image carries nft for it.
	if !slices.Contains(agent.Args, "--network-policy") {
		t.Errorf("agent args %q lack --network-policy", agent.Args)
	}
	for probe, p := range map[string]*corev1.Probe{"/healthz": agent.LivenessProbe, "/readyz": agent.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Host != "127.0.0.1" || p.HTTPGet.Port.IntValue() != 8482 || p.HTTPGet.Path != probe {
			t.Errorf("probe of %s = %+v, want GET http://127.0.0.1:8482%s", probe, p, probe)
		}
	}

	var dep appsv1.Deployment
	readObject(t, "controller/deployment.yaml", &dep)
	ctl := container(t, dep.Spec.Template.Spec, "controller")
	if normalized(ctl.Image) != controllerImg.Name || ctl.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("controller image %s (%s), want %s resolving to %s, IfNotPresent", ctl.Image, ctl.ImagePullPolicy, ctl.Image, controllerImg.Name)
	}
	if len(ctl.Command) != 0 || !reflect.DeepEqual(controllerImg.Entrypoint, []string{images.ControllerBin}) {
		t.Errorf("controller command %q with image entrypoint %q, want the entrypoint %s", ctl.Command, controllerImg.Entrypoint, images.ControllerBin)
	}
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		controllerImg.User == "" || strings.HasPrefix(controllerImg.User, "0:") || controllerImg.User == "0" {
		t.Errorf("controller runAsNonRoot %+v with image user %q: want runAsNonRoot and a non-root numeric user", sc, controllerImg.User)
	}
}

func TestNormalized(t *testing.T) {
	for ref, want := range map[string]string{
		"podsg-agent:latest":                    "docker.io/library/podsg-agent:latest",
		"me/podsg-agent:v1":                     "docker.io/me/podsg-agent:v1",
		"podsg.local/pause:latest":              "podsg.local/pause:latest",
		"localhost:5000/x:y":                    "localhost:5000/x:y",
		"1.dkr.ecr.us-west-2.amazonaws.com/a:b": "1.dkr.ecr.us-west-2.amazonaws.com/a:b",
	} {
		if got := normalized(ref); got != want {
			t.Errorf("normalized(%s) = %s, want %s", ref, got, want)
		}
	}
}
