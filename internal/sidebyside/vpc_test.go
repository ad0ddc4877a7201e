//go:build awsrc

package sidebyside

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// Where the workload runs, in the local VPC's terms.
const (
	region = vpctest.Region
	zone   = region + "a"
	// nodeType carries 54 branch ENIs in both controllers' tables, on 8 network interfaces.
	nodeType = "m5.4xlarge"
	// clusterName is what both controllers tag their ENIs with.
	clusterName = "sidebyside"
)

// localVPC is one podsg-vpc process on a fresh state dir: a VPC, a subnet, groups, the
// instances of the nodes and of the host AWS's controller believes it runs on.
type localVPC struct {
	bin, stateDir string
	proc          *testenv.Process
	// URL is the EC2 endpoint; IMDS serves the host instance's metadata.
	URL, IMDS string
	c         *ec2.Client

	vpcID, subnetID, subnetCIDR string
	podGroups                   []string // the policy's groups
	host                        string   // instance id AWS's controller reads from IMDS
	nodes                       []types.Instance

	mu  sync.Mutex
	own map[string]map[string]float64 // this harness's own calls, by action and code
}

// startVPC builds the network without throttling (the setup is not what is measured), then
// serves it again with EC2's throttling profile and the host's instance metadata.
func startVPC(t testing.TB, nodes int) *localVPC {
	t.Helper()
	v := &localVPC{bin: testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc"), stateDir: t.TempDir(),
		own: map[string]map[string]float64{}}
	v.serve(t)
	v.build(t, nodes)
	if err := v.proc.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	v.serve(t, "--profile", "aws", "--imds-listen", "127.0.0.1:0", "--imds-instance", v.host)
	endpoint, _, _ := strings.Cut(testenv.ListeningURL(t, v.proc, "podsg-vpc instance metadata on "), " for ")
	v.IMDS = endpoint
	return v
}

func (v *localVPC) serve(t testing.TB, args ...string) {
	t.Helper()
	p, err := testenv.StartProcess(t, v.bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--state-dir", v.stateDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	v.proc, v.URL = p, testenv.ListeningURL(t, p, "podsg-vpc listening on ")
	v.c = vpctest.NewClient(v.URL, "", "")
}

func (v *localVPC) build(t testing.TB, nodes int) {
	t.Helper()
	ctx := t.Context()
	vpc, err := v.c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	v.vpcID, v.subnetCIDR = *vpc.Vpc.VpcId, "10.0.0.0/17"
	sn, err := v.c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &v.vpcID, CidrBlock: &v.subnetCIDR, AvailabilityZone: aws.String(zone)})
	if err != nil {
		t.Fatal(err)
	}
	v.subnetID = *sn.Subnet.SubnetId
	nodeGroup := v.group(t, "nodes")
	v.podGroups = []string{v.group(t, "backend-a"), v.group(t, "backend-b")}
	v.host = *v.run(t, "m5.large", nodeGroup, 1)[0].InstanceId
	v.nodes = v.run(t, nodeType, nodeGroup, nodes)
}

func (v *localVPC) group(t testing.TB, name string) string {
	t.Helper()
	out, err := v.c.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{VpcId: &v.vpcID, GroupName: aws.String(name), Description: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return *out.GroupId
}

func (v *localVPC) run(t testing.TB, typ, group string, n int) []types.Instance {
	t.Helper()
	out, err := v.c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceType(typ),
		SubnetId: &v.subnetID, SecurityGroupIds: []string{group}, MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n))})
	if err != nil {
		t.Fatal(err)
	}
	return out.Instances
}

// countOwn records one call this harness made, so that the controller's calls can be told apart.
func (v *localVPC) countOwn(action string, err error) {
	code := "Success"
	if err != nil {
		code = vpctest.Code(err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.own[action] == nil {
		v.own[action] = map[string]float64{}
	}
	v.own[action][code]++
}

// branches lists the ENIs of the VPC that are neither an instance's nor a trunk: the branch
// ENIs either controller made for pods (AWS's are plain "interface" ENIs until associated).
func (v *localVPC) branches(ctx context.Context) (map[string]types.NetworkInterface, error) {
	out := map[string]types.NetworkInterface{}
	p := ec2.NewDescribeNetworkInterfacesPaginator(v.c, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(1000),
		Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{v.vpcID}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		v.countOwn("DescribeNetworkInterfaces", err)
		if err != nil {
			return nil, err
		}
		for _, e := range page.NetworkInterfaces {
			if e.Attachment == nil && e.InterfaceType != types.NetworkInterfaceTypeTrunk {
				out[*e.NetworkInterfaceId] = e
			}
		}
	}
	return out, nil
}

func (v *localVPC) String() string { return fmt.Sprintf("local VPC %s at %s", v.vpcID, v.URL) }
