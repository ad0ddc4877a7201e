package agent_test

import (
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// seedVPCCIDR is the tutorial VPC's CIDR.
const seedVPCCIDR = "10.77.0.0/16"

func TestMain(m *testing.M) {
	testenv.Main(m)
}

// TestSeedAtCNILevel is the seed tutorial's result decided by packets, one layer below
// Kubernetes: on one local-VPC instance running the real podsg-agent, the runtime (libcni with
// the built podsg-cni) sets up two pods. The one whose branch ENI carries the database-client
// group prints PostgreSQL's version; the regular one times out — as in the tutorial.
func TestSeedAtCNILevel(t *testing.T) {
	testenv.RequireRoot(t)
	w := newWorld(t, true)
	node := w.instance(t, types.InstanceTypeM5Large)
	w.startAgent(t, node, true)
	branchPod := w.pod(t, "postgres-test", true)
	regularPod := w.pod(t, "postgres-test-no-sa", false)
	w.attachTrunk(t, node)
	w.annotate(t, branchPod, w.branchENI(t, node))

	branchNS, regularNS := newNetNS(t), newNetNS(t)
	w.cniAdd(t, node, branchNS, branchPod)
	w.cniAdd(t, node, regularNS, regularPod)

	if out := w.pgcheck(t, branchNS); !strings.HasPrefix(out, "('PostgreSQL 15") {
		t.Errorf("branch pod (RDSDbAccessSG) printed %q, want the server version", out)
	}
	if out := w.pgcheck(t, regularNS); out != "Database connection failed due to timeout expired" {
		t.Errorf("regular pod printed %q, want the connection to time out", out)
	}
	w.cniCheck(t, node, branchNS, branchPod)

	// DEL works while the agent is down (from the record alone), and twice.
	w.agent.Kill()
	for range 2 {
		w.cniDel(t, node, branchNS, branchPod)
		w.cniDel(t, node, regularNS, regularPod)
	}
	w.expectNodeClean(t, node)
}

type world struct {
	kube     *testenv.Env
	ec2      *ec2.Client
	stateDir string
	names    topo.Names
	vpc, sub string
	sgNode   string
	sgClient string
	dbHost   string
	hostIP   string // the root namespace's address in the VPC
	apiURL   string // the local VPC's endpoint on loopback (EC2 and RDS)
	ec2URL   string // EC2 as seen from inside the VPC
	kubeURL  string // the API server as seen from inside the VPC
	binDir   string
	confDir  string
	podState string
	socket   string
	trunkID  string
	agent    *testenv.Process
}

// newWorld starts an API server and a local VPC with the seed's network; db adds its database.
func newWorld(t *testing.T, db bool) *world {
	t.Helper()
	w := &world{kube: testenv.Start(t, testenv.Options{})}
	// PostgreSQL runs as user postgres and must traverse the state dir: t.TempDir is 0700.
	dir, err := os.MkdirTemp("", "podsg-seed-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	w.stateDir, w.names = filepath.Join(dir, "vpc"), topo.Names{ID: topo.IDFromStateDir(filepath.Join(dir, "vpc"))}
	work := t.TempDir()
	w.binDir, w.confDir, w.podState, w.socket = filepath.Join(work, "bin"), filepath.Join(work, "net.d"), filepath.Join(work, "pods"), filepath.Join(work, "agent.sock")

	vpcBin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	// Registered before the server starts, so it runs after the server has stopped.
	t.Cleanup(func() {
		if out, err := exec.Command(vpcBin, "cleanup", "--state-dir", w.stateDir).CombinedOutput(); err != nil {
			t.Errorf("podsg-vpc cleanup: %v\n%s", err, out)
		}
	})
	p, err := testenv.StartProcess(t, vpcBin, "serve", "--listen", "127.0.0.1:0", "--state-dir", w.stateDir, "--dataplane", "netns")
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.ListeningURL(t, p, "podsg-vpc listening on ")
	w.ec2, w.apiURL = vpctest.NewClient(url, "", ""), url
	w.buildVPC(t, db)
	w.ec2URL = "http://" + forward(t, w.hostIP, hostPort(t, url))
	w.kubeURL = "https://" + forward(t, w.hostIP, hostPort(t, w.kube.Config.Host))
	return w
}

// buildVPC makes the seed's network: a VPC, a subnet, the node group, the database-client
// group (RDSDbAccessSG), the database group admitting it on 5432, the database, and the root
// namespace's own ENI (so the agent can reach EC2 and the API server).
func (w *world) buildVPC(t *testing.T, db bool) {
	t.Helper()
	ctx := t.Context()
	net := vpctest.NewTutorial(t, w.ec2, seedVPCCIDR, "10.77.0.0/20")
	w.vpc, w.sub, w.sgNode, w.sgClient = net.VPC, net.Subnet, net.NodeSG, net.ClientSG
	sgDB := net.DBSG
	sgHost := *must(w.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: &w.vpc, GroupName: aws.String("host"), Description: aws.String("host")}))(t).GroupId
	must(w.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sgHost, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(0), ToPort: aws.Int32(65535),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: &w.sgNode}}}}}))(t)
	host := must(w.ec2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: &w.sub, Groups: []string{sgHost},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface,
			Tags: []types.Tag{{Key: aws.String(topo.AttachTag), Value: aws.String("host")}}}}}))(t)
	w.hostIP = *host.NetworkInterface.PrivateIpAddress
	if db {
		w.dbHost = createDB(t, w, sgDB)
	}
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("no host:port in %q: %v", raw, err)
	}
	return u.Host
}
