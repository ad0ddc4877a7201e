package localcluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
)

// BenchmarkLocalCluster measures, with the Kubernetes binaries cached: `podsg local up` to
// nodes Ready, and pod creation to Running for a branch-ENI pod and a regular pod.
func BenchmarkLocalCluster(b *testing.B) {
	testenv.RequireRoot(b)
	o := localcluster.Options{Nodes: 1, KubeBinDir: testenv.KubeBinDir(b)}
	for _, bin := range []string{"podsg-vpc", "podsg-controller", "podsg-agent", "podsg-cni", "pgcheck"} {
		o.BinDir = filepath.Dir(testenv.Build(b, "github.com/podsg/podsg/cmd/"+bin))
	}
	dir, err := os.MkdirTemp("/var/lib", "pbench-")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		b.Fatal(err)
	}
	o.StateDir = filepath.Join(dir, "local")
	b.Cleanup(func() {
		// The state dir stays when down fails: `podsg local down --state-dir` can retry.
		if err := localcluster.Down(context.WithoutCancel(b.Context()), o, os.Stderr); err != nil {
			b.Errorf("podsg local down: %v", err)
			return
		}
		_ = os.RemoveAll(dir)
	})
	for range b.N {
		start := time.Now()
		if err := localcluster.Up(b.Context(), o, os.Stderr); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-up-to-ready")
		kubectl := func(stdin string, args ...string) {
			cmd := exec.Command(filepath.Join(o.KubeBinDir, "kubectl"), append([]string{"--kubeconfig=" + o.Kubeconfig()}, args...)...)
			cmd.Stdin = strings.NewReader(stdin)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("kubectl %v: %v\n%s", args, err, out)
			}
		}
		policy := "apiVersion: vpcresources.k8s.aws/v1beta1\nkind: SecurityGroupPolicy\nmetadata: {name: bench, namespace: default}\n" +
			"spec:\n  podSelector: {matchLabels: {sg: branch}}\n  securityGroups:\n    groupIds: [" + clusterSG(b, o) + "]\n"
		kubectl(policy, "apply", "-f", "-")
		for _, kind := range []string{"regular", "branch"} {
			start := time.Now()
			kubectl("", "run", "bench-"+kind, "--labels=sg="+kind, "--image=podsg.local/busybox:latest", "--image-pull-policy=IfNotPresent",
				"--restart=Never", "--command", "--", "sleep", "3600")
			kubectl("", "wait", "--for=condition=Ready", "pod/bench-"+kind, "--timeout=120s")
			b.ReportMetric(time.Since(start).Seconds(), "s-"+kind+"-pod-running")
			kubectl("", "delete", "pod", "bench-"+kind, "--wait=true")
		}
		kubectl("", "delete", "sgp", "bench")
	}
}

// clusterSG returns the cluster security group, the one every node is in.
func clusterSG(b *testing.B, _ localcluster.Options) string {
	b.Helper()
	name := "eks-cluster-sg-" + localcluster.ClusterName
	out, err := localcluster.EC2Client().DescribeSecurityGroups(b.Context(), &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil || len(out.SecurityGroups) == 0 {
		b.Fatalf("finding the cluster security group: %v", err)
	}
	return aws.ToString(out.SecurityGroups[0].GroupId)
}
