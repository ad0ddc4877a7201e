package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/config"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/images"
)

func (o *Options) vpcDaemon() cluster.Daemon {
	return cluster.NewDaemon(cluster.DaemonOptions{Name: "podsg-vpc", Dir: o.path("run"), Bin: filepath.Join(o.BinDir, "podsg-vpc"),
		Home: o.path("vpc"), Args: []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", APIPort), "--state-dir", o.path("vpc"), "--dataplane", "netns",
			// Every program of the machine may call this API: the request log says which did what.
			"--request-log", o.path("run", "podsg-vpc-requests.log")}})
}

func (o *Options) controllerDaemon(vpcID string) cluster.Daemon {
	return cluster.NewDaemon(cluster.DaemonOptions{Name: "podsg-controller", Dir: o.path("run"), Bin: filepath.Join(o.BinDir, "podsg-controller"),
		Home: o.path("controller"), Args: []string{
			"--kubeconfig=" + o.path("control-plane", "admin.kubeconfig"), "--cluster-name=" + ClusterName, "--region=" + Region,
			"--ec2-endpoint=" + APIURL(), "--vpc-id=" + vpcID, "--webhook-host=127.0.0.1", fmt.Sprintf("--webhook-port=%d", webhookPort),
			// Pods given an IAM role reach the local VPC's STS, IAM, EC2 and RDS where the
			// node agent reaches EC2.
			"--local-vpc-endpoint=" + PodVPCEndpoint,
			"--webhook-cert-dir=" + o.path("controller", "certs"), "--branch-cooldown=30s",
			fmt.Sprintf("--metrics-addr=127.0.0.1:%d", controllerMetricsPort), fmt.Sprintf("--health-addr=127.0.0.1:%d", controllerHealthPort)},
		// In the root namespace no metadata service may be asked: 169.254.169.254 would leave
		// through the machine's default route. The controller's EC2 client then falls back
		// to the local VPC's placeholder credentials.
		Env: daemonEnv("AWS_EC2_METADATA_DISABLED=true")})
}

// daemonEnv is the environment of podsg's daemons: podsg's own without any AWS_ variable, so
// that credentials or settings meant for real AWS in the user's shell never reach the local
// VPC's clients, and the agents use their instance's metadata as on EC2; plus extra.
func daemonEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func (o *Options) controlPlane(hostIP string) (*cluster.ControlPlane, error) {
	return cluster.NewControlPlane(cluster.Options{StateDir: o.path("control-plane"), BinDir: o.KubeBinDir, APIServerAddress: hostIP, Ports: controlPlanePorts})
}

// Up brings the local VPC, the control plane, podsg-controller and the nodes up. Running it
// again on a running cluster starts only what is missing.
func Up(ctx context.Context, o Options, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	// Before anything starts: a taken port would otherwise fail a daemon halfway, in its log.
	if err := o.preflight(); err != nil {
		return err
	}
	if err := prepareStateDir(o.StateDir); err != nil {
		return err
	}
	if err := o.remember(); err != nil {
		return err
	}
	step := func(format string, args ...any) { _, _ = fmt.Fprintf(out, "• "+format+"\n", args...) }
	net, err := o.startVPC(ctx, step)
	if err != nil {
		return err
	}
	cp, err := o.startControlPlane(ctx, net, step)
	if err != nil {
		return err
	}
	nodes, err := o.startNodes(ctx, cp, net, step)
	if err != nil {
		return err
	}
	kubectl := o.kubectl(cp.AdminKubeconfig())
	if !o.HostProcesses {
		// Before the nodes are Ready: they only turn Ready once podsg-agent has written the CNI
		// configuration, and its DaemonSet, on the host network, tolerates NotReady nodes.
		step("podsg: kubectl apply -k of config/ (CRD, RBAC, podsg-controller Deployment and webhook Service, podsg-agent DaemonSet), overlay %s", o.path("install", "local"))
		if err := o.installPodsg(ctx, kubectl, net.VPCID); err != nil {
			return err
		}
	}
	if err := o.waitNodesReady(ctx, kubectl, nodeNames(nodes)); err != nil {
		return err
	}
	if !o.HostProcesses {
		if err := o.waitPodsg(ctx, kubectl); err != nil {
			return err
		}
	}
	// Pods need their namespace's default ServiceAccount, which kube-controller-manager
	// creates shortly after start: a cluster is only ready for users once it exists.
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := kubectl(ctx, "", "get", "serviceaccount", "default", "--namespace=default")
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the default ServiceAccount: %w", err)
	}
	step("CoreDNS: Deployment kube-system/coredns behind Service kube-dns (%s), forwarding to the VPC resolver at %s", ClusterDNSIP, vpcResolver())
	if err := o.installCoreDNS(ctx, kubectl, vpcResolver()); err != nil {
		return err
	}
	return o.writeUserKubeconfig(cp.AdminKubeconfig())
}

// startVPC runs podsg-vpc and makes the cluster's network in it.
func (o *Options) startVPC(ctx context.Context, step func(string, ...any)) (*network, error) {
	step("local VPC (EC2 API at %s, data path in network namespaces)", APIURL())
	if _, err := o.vpcDaemon().Start(ctx); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, APIURL()+"/healthz"); err != nil {
		return nil, fmt.Errorf("waiting for podsg-vpc: %w (log: %s)", err, o.vpcDaemon().LogFile())
	}
	net, err := ensureNetwork(ctx, EC2Client())
	if err != nil {
		return nil, err
	}
	step("VPC %s, subnets %s, cluster security group %s", net.VPCID, strings.Join(net.Subnets, " "), net.ClusterSG)
	step("VPC resolver at %s:53 (AmazonProvidedDNS in podsg-vpc: private DNS names, RDS endpoints; no internet, so NXDOMAIN for the rest)", vpcResolver())
	if err := waitResolver(ctx, net.HostIP); err != nil {
		return nil, err
	}
	return net, nil
}

// startControlPlane runs etcd, the API server on the host ENI's address, the scheduler and
// controller manager, installs podsg's CRD and runs podsg-controller.
func (o *Options) startControlPlane(ctx context.Context, net *network, step func(string, ...any)) (*cluster.ControlPlane, error) {
	cp, err := o.controlPlane(net.HostIP)
	if err != nil {
		return nil, err
	}
	step("control plane: etcd, kube-apiserver at https://%s:6443, kube-scheduler, kube-controller-manager", net.HostIP)
	if err := cp.Up(ctx); err != nil {
		return nil, err
	}
	if !o.HostProcesses {
		return cp, nil // podsg comes with the nodes, in-cluster (installPodsg)
	}
	// The CRD, and the namespace of podsg-controller's lease and webhook certificate (in a
	// real cluster, config/controller's kustomization creates it).
	manifests := crdManifests() + "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: podsg-system\n"
	if _, err := o.kubectl(cp.AdminKubeconfig())(ctx, manifests, "apply", "-f", "-"); err != nil {
		return nil, fmt.Errorf("installing the SecurityGroupPolicy CRD: %w", err)
	}
	step("podsg-controller (webhooks, trunks, branch ENIs)")
	if _, err := o.controllerDaemon(net.VPCID).Start(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

// startNodes launches the instances and runs a node in each: nodes 1 to o.Nodes and any
// other node recorded (added with `podsg local node add`).
func (o *Options) startNodes(ctx context.Context, cp *cluster.ControlPlane, net *network, step func(string, ...any)) ([]nodeSpec, error) {
	recorded, err := o.nodes()
	if err != nil {
		return nil, err
	}
	imgs, err := o.nodeImages()
	if err != nil {
		return nil, err
	}
	if err := o.recordHostDirs(); err != nil {
		return nil, err
	}
	var started []nodeSpec
	for _, i := range wantedIndices(o.Nodes, recorded) {
		spec, err := o.launchNode(ctx, cp, net, i, imgs, step)
		if err != nil {
			return nil, err
		}
		started = append(started, spec)
	}
	return started, nil
}

// launchNode finds or launches node index's instance, records the node and starts it. A
// record of an instance that no longer runs is stopped first: its processes must not outlive
// the record that lets Down find them.
func (o *Options) launchNode(ctx context.Context, cp *cluster.ControlPlane, net *network, index int, imgs []images.Image, step func(string, ...any)) (nodeSpec, error) {
	inst, err := net.ensureInstance(ctx, EC2Client(), index)
	if err != nil {
		return nodeSpec{}, err
	}
	spec := o.nodeSpec(index, inst)
	recorded, err := o.nodes()
	if err != nil {
		return nodeSpec{}, err
	}
	if old, ok := recordOf(recorded, index); ok && old.InstanceID != spec.InstanceID {
		if err := o.stopNode(ctx, old); err != nil {
			return nodeSpec{}, fmt.Errorf("stopping node %s, whose instance %s is gone: %w", old.Name, old.InstanceID, err)
		}
	}
	components := "containerd, kubelet, kube-proxy (podsg-agent: its DaemonSet)"
	if o.HostProcesses {
		components = "containerd, kubelet, kube-proxy, podsg-agent"
	}
	step("node %s: instance %s (%s, %s), %s", spec.Name, inst.ID, InstanceType, inst.AZ, components)
	// Recorded before starting, so that `down` also stops a node that failed halfway.
	if err := writeJSON(o.path("nodes.json"), withNode(recorded, spec)); err != nil {
		return nodeSpec{}, err
	}
	if err := o.startNode(ctx, cp, spec, imgs); err != nil {
		return nodeSpec{}, err
	}
	return spec, nil
}

// EC2Client is an SDK client for the local VPC's EC2 API on loopback.
func EC2Client() *ec2.Client {
	return ec2.New(ec2.Options{Region: Region, BaseEndpoint: aws.String(APIURL()),
		Credentials: credentials.NewStaticCredentialsProvider("podsg", "podsg", ""),
		HTTPClient:  &http.Client{Transport: cloudec2.BufferedBodies(http.DefaultTransport.(*http.Transport).Clone())}})
}

// prepareStateDir creates the state dir searchable (not readable) by others, as the local
// RDS's PostgreSQL runs as user postgres and must reach its data inside.
func prepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil { //nolint:gosec // search-only for others, see above
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (mode %v); the local RDS runs PostgreSQL as user postgres: use a --state-dir under /var/lib", d, fi.Mode().Perm())
		}
	}
	return nil
}

func waitHTTP(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not serving yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// kubectl returns a runner of the cluster's kubectl with a kubeconfig.
func (o *Options) kubectl(kubeconfig string) func(ctx context.Context, stdin string, args ...string) (string, error) {
	return func(ctx context.Context, stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(o.KubeBinDir, "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		outb, err := cmd.CombinedOutput()
		if err != nil {
			return string(outb), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(outb)))
		}
		return string(outb), nil
	}
}

func crdManifests() string {
	entries, _ := config.CRDs.ReadDir(config.CRDDir)
	var b strings.Builder
	for _, e := range entries {
		data, _ := config.CRDs.ReadFile(config.CRDDir + "/" + e.Name())
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.String()
}

// nodeImages are the images every node imports: images(), and in-cluster podsg's own.
func (o *Options) nodeImages() ([]images.Image, error) {
	imgs, err := o.images()
	if err != nil || o.HostProcesses {
		return imgs, err
	}
	own, err := o.podsgImages()
	if err != nil {
		return nil, err
	}
	return append(imgs, own...), nil
}

// modeName says how podsg runs in a cluster of that mode.
func modeName(hostProcesses bool) string {
	if hostProcesses {
		return "as host processes (--host-processes)"
	}
	return "in-cluster"
}

func (o *Options) images() ([]images.Image, error) {
	bb, err := images.BusyboxFiles(images.BusyboxBin)
	if err != nil {
		return nil, fmt.Errorf("reading busybox-static (hack/setup.sh installs it): %w", err)
	}
	var out []images.Image
	for _, img := range []images.Image{images.PauseImage(images.BusyboxBin), images.BusyboxImage(bb), images.PGCheckImage(filepath.Join(o.BinDir, "pgcheck"), bb),
		images.CoreDNSImage(filepath.Join(o.KubeBinDir, "coredns"))} {
		// Once for every node.
		r, err := images.Rendered(img)
		if err != nil {
			return nil, fmt.Errorf("writing image %s: %w", img.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// binaries is what `up` ran with, so that a later `down` or `status` in a plain shell (no
// --kube-bin-dir, no KUBEBUILDER_ASSETS) finds the same programs.
type binaries struct {
	KubeBinDir string `json:"kubeBinDir"`
	BinDir     string `json:"binDir"`
	// HostProcesses is the mode `up` ran podsg in.
	HostProcesses bool `json:"hostProcesses,omitempty"`
}

func (o *Options) remember() error {
	kube, err := filepath.Abs(o.KubeBinDir)
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(o.BinDir)
	if err != nil {
		return err
	}
	var old binaries
	if data, err := os.ReadFile(o.path("binaries.json")); err == nil && json.Unmarshal(data, &old) == nil && old.HostProcesses != o.HostProcesses {
		if _, running := o.vpcDaemon().Running(); running {
			return fmt.Errorf("the local cluster at %s runs podsg %s: run podsg local down first to change that", o.StateDir, modeName(old.HostProcesses))
		}
	}
	return writeJSON(o.path("binaries.json"), binaries{KubeBinDir: kube, BinDir: bin, HostProcesses: o.HostProcesses})
}

// recall fills the binary directories not given with those `up` recorded. Without a record
// (a cluster from an older podsg), podsg's binaries are those beside the running podsg.
func (o *Options) recall() {
	var b binaries
	if data, err := os.ReadFile(o.path("binaries.json")); err == nil {
		_ = json.Unmarshal(data, &b) // a bad record is no record
	}
	if o.KubeBinDir == "" {
		o.KubeBinDir = b.KubeBinDir
	}
	o.HostProcesses = b.HostProcesses
	if o.BinDir == "" {
		o.BinDir = b.BinDir
	}
	if o.BinDir == "" {
		if self, err := os.Executable(); err == nil {
			o.BinDir = filepath.Dir(self)
		}
	}
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func (o *Options) writeUserKubeconfig(admin string) error {
	data, err := os.ReadFile(admin)
	if err != nil {
		return err
	}
	return os.WriteFile(o.Kubeconfig(), data, 0o600)
}
