package vpccmd

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func TestMain(m *testing.M) {
	testenv.Main(m)
}

// startBinary runs podsg-vpc serve on a free loopback port and returns its
// URL once it printed its listening line.
func startBinary(t testing.TB, bin, stateDir string) (*testenv.Process, string) {
	t.Helper()
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return p, testenv.ListeningURL(t, p, "podsg-vpc listening on ")
}

// TestStateSurvivesKill9 builds the real binary, mutates state through the
// SDK, SIGKILLs the process and checks a restarted one serves everything.
func TestStateSurvivesKill9(t *testing.T) {
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	stateDir := t.TempDir()
	server, url := startBinary(t, bin, stateDir)
	c, ctx := vpctest.NewClient(url, "", ""), t.Context()

	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/20")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: vpc.Vpc.VpcId, GroupName: aws.String("pods"), Description: aws.String("pods")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: sg.GroupId}},
	}}}); err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: "m5.xlarge", SubnetId: subnet.Subnet.SubnetId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	trunk, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet.Subnet.SubnetId, InterfaceType: "trunk"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: trunk.NetworkInterface.NetworkInterfaceId, InstanceId: run.Instances[0].InstanceId, DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var assocs []string
	for vlan := int32(1); vlan <= 5; vlan++ {
		br, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet.Subnet.SubnetId, Groups: []string{*sg.GroupId},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("pod"), Value: aws.String("p")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: br.NetworkInterface.NetworkInterfaceId, TrunkInterfaceId: trunk.NetworkInterface.NetworkInterfaceId, VlanId: aws.Int32(vlan)})
		if err != nil {
			t.Fatal(err)
		}
		assocs = append(assocs, *a.InterfaceAssociation.AssociationId)
	}

	server.Kill() // SIGKILL: no shutdown path runs
	_, url = startBinary(t, bin, stateDir)
	c = vpctest.NewClient(url, "", "")

	enis, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("tag:pod"), Values: []string{"p"}}}})
	if err != nil || len(enis.NetworkInterfaces) != 5 {
		t.Fatalf("branches after restart: %d, %v", len(enis.NetworkInterfaces), err)
	}
	for _, e := range enis.NetworkInterfaces {
		if e.Status != types.NetworkInterfaceStatusInUse {
			t.Errorf("branch %s status %s after restart", *e.NetworkInterfaceId, e.Status)
		}
	}
	got, err := c.DescribeTrunkInterfaceAssociations(ctx, &ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: assocs})
	if err != nil || len(got.InterfaceAssociations) != 5 {
		t.Fatalf("associations after restart: %v", err)
	}
	insts, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{*run.Instances[0].InstanceId}})
	if err != nil || len(insts.Reservations[0].Instances[0].NetworkInterfaces) != 2 {
		t.Fatalf("instance after restart: %v", err)
	}
	g, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{*sg.GroupId}})
	if err != nil || len(g.SecurityGroups[0].IpPermissions) != 1 {
		t.Fatalf("group rules after restart: %v", err)
	}
	// Indexes were rebuilt: the VLANs are still taken and addresses not reused.
	br, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range enis.NetworkInterfaces {
		if *e.PrivateIpAddress == *br.NetworkInterface.PrivateIpAddress {
			t.Errorf("address %s reused after restart", *e.PrivateIpAddress)
		}
	}
	_, err = c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: br.NetworkInterface.NetworkInterfaceId, TrunkInterfaceId: trunk.NetworkInterface.NetworkInterfaceId, VlanId: aws.Int32(3)})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
}

func TestCheckListen(t *testing.T) {
	tests := map[string]struct {
		addr   string
		remote bool
		ok     bool
	}{
		"loopback v4":     {"127.0.0.1:8450", false, true},
		"loopback v6":     {"[::1]:8450", false, true},
		"localhost":       {"localhost:0", false, true},
		"all interfaces":  {":8450", false, false},
		"public":          {"10.1.2.3:8450", false, false},
		"public, allowed": {"10.1.2.3:8450", true, true},
		"garbage":         {"nope", true, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := checkListen(tc.addr, tc.remote); (err == nil) != tc.ok {
				t.Errorf("checkListen(%q, %v) = %v", tc.addr, tc.remote, err)
			}
		})
	}
}
