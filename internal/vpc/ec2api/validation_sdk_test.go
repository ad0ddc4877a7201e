package ec2api_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// call posts one EC2 Query request and returns its status and body.
func call(t *testing.T, env *vpctest.Env, action string, params map[string]string) (int, string) {
	t.Helper()
	form := url.Values{"Action": {action}, "Version": {"2016-11-15"}}
	for k, v := range params {
		form.Set(k, v)
	}
	resp, err := http.PostForm(env.URL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	return resp.StatusCode, readAll(t, resp)
}

var requestID = regexp.MustCompile(`<requestId>[^<]*</requestId>`)

// everything is what the VPC holds, as the describe calls render it.
func everything(t *testing.T, env *vpctest.Env) string {
	t.Helper()
	var b strings.Builder
	for _, action := range []string{"DescribeInstances", "DescribeNetworkInterfaces", "DescribeSecurityGroups", "DescribeSecurityGroupRules", "DescribeTags"} {
		status, body := call(t, env, action, nil)
		if status != 200 {
			t.Fatalf("%s: %d %s", action, status, body)
		}
		b.WriteString(requestID.ReplaceAllString(body, ""))
	}
	return b.String()
}

// TestInputsEC2Rejects: inputs EC2 refuses get its error code and a message
// saying what is wrong, and change nothing; the inputs next to them that
// EC2 accepts pass.
func TestInputsEC2Rejects(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := *env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24").SubnetId
	inst := *env.NewInstance(t, subnet, "m5.large").InstanceId // 3 network interfaces
	sg := env.NewGroup(t, *vpc.VpcId, "app")
	eni := *env.NewENI(t, subnet, "").NetworkInterfaceId
	other := *env.NewENI(t, subnet, types.NetworkInterfaceCreationTypeTrunk).NetworkInterfaceId

	group := func(name, desc string) map[string]string {
		return map[string]string{"VpcId": *vpc.VpcId, "GroupName": name, "GroupDescription": desc}
	}
	rule := func(desc string) map[string]string {
		return map[string]string{"GroupId": sg, "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "80",
			"IpPermissions.1.ToPort": "80", "IpPermissions.1.IpRanges.1.CidrIp": "10.9.0.0/16", "IpPermissions.1.IpRanges.1.Description": desc}
	}
	tag := func(k, v string) map[string]string {
		return map[string]string{"ResourceId.1": eni, "Tag.1.Key": k, "Tag.1.Value": v}
	}
	tests := []struct {
		name, action string
		params       map[string]string
		message      string // "" for an accepted request
	}{
		{"device index beyond the type's interfaces", "AttachNetworkInterface",
			map[string]string{"NetworkInterfaceId": eni, "InstanceId": inst, "DeviceIndex": "3"}, "supports a maximum of 3 network interfaces"},
		{"device index far beyond", "AttachNetworkInterface",
			map[string]string{"NetworkInterfaceId": eni, "InstanceId": inst, "DeviceIndex": "127"}, "device indexes 0 to 2"},
		{"RunInstances with a device index beyond the type's", "RunInstances",
			map[string]string{"ImageId": "ami-12345678", "InstanceType": "m5.large", "MinCount": "1", "MaxCount": "1",
				"NetworkInterface.1.DeviceIndex": "0", "NetworkInterface.1.SubnetId": subnet,
				"NetworkInterface.2.DeviceIndex": "4", "NetworkInterface.2.SubnetId": subnet}, "supports a maximum of 3 network interfaces"},
		{"group name beyond ASCII", "CreateSecurityGroup", group("grüne", "d"), "Character sets beyond ASCII are not supported"},
		{"group name not UTF-8", "CreateSecurityGroup", group("app\xff", "d"), "not valid UTF-8"},
		{"group name with a quote", "CreateSecurityGroup", group("bob's", "d"), "Invalid security group name"},
		{"group name of 256 characters", "CreateSecurityGroup", group(strings.Repeat("a", 256), "d"), "maximum of 255 characters"},
		{"group name sg-", "CreateSecurityGroup", group("sg-web", "d"), "may not be in the format sg-*"},
		{"group description beyond ASCII", "CreateSecurityGroup", group("web", "café"), "Character sets beyond ASCII are not supported"},
		{"group description with a percent sign", "CreateSecurityGroup", group("web", "100% web"), "Invalid security group description"},
		{"group description with a newline", "CreateSecurityGroup", group("web", "two\nlines"), "Invalid security group description"},
		{"group of every allowed character", "CreateSecurityGroup",
			group("a-z A-Z 0-9 ._-:/()#,@[]+=&;{}!$*", "a-z A-Z 0-9 ._-:/()#,@[]+=&;{}!$*"), ""},
		{"rule description with a quote", "AuthorizeSecurityGroupIngress", rule("bob's laptop"), "Invalid rule description"},
		{"rule description beyond ASCII", "AuthorizeSecurityGroupIngress", rule("→ web"), "Character sets beyond ASCII are not supported"},
		{"ENI description not UTF-8", "CreateNetworkInterface", map[string]string{"SubnetId": subnet, "Description": "eth\xfe\xff"}, "not valid UTF-8"},
		{"ENI description with a NUL", "CreateNetworkInterface", map[string]string{"SubnetId": subnet, "Description": "a\x00b"}, "cannot be represented"},
		{"ENI description changed to something not UTF-8", "ModifyNetworkInterfaceAttribute",
			map[string]string{"NetworkInterfaceId": other, "Description.Value": "\xc3"}, "not valid UTF-8"},
		{"ENI description in Unicode", "ModifyNetworkInterfaceAttribute",
			map[string]string{"NetworkInterfaceId": other, "Description.Value": "Ünïcødé ✓"}, ""},
		{"tag key not UTF-8", "CreateTags", tag("team\xff", "a"), "not valid UTF-8"},
		{"tag value not UTF-8", "CreateTags", tag("team", "\xe2\x82"), "not valid UTF-8"},
		{"tag key of 129 characters", "CreateTags", tag(strings.Repeat("k", 129), "a"), "between 1 and 128 characters"},
		{"tag value of 257 characters", "CreateTags", tag("team", strings.Repeat("é", 257)), "maximum length of 256 characters"},
		{"tag key of 128 characters beyond ASCII", "CreateTags", tag(strings.Repeat("ключ", 32), strings.Repeat("é", 256)), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := everything(t, env)
			status, body := call(t, env, tc.action, tc.params)
			if tc.message == "" {
				if status != 200 {
					t.Fatalf("EC2 accepts this; got %d %s", status, body)
				}
				return
			}
			if status != 400 || !strings.Contains(body, "<Code>InvalidParameterValue</Code>") || !strings.Contains(body, tc.message) {
				t.Fatalf("got %d %s, want InvalidParameterValue saying %q", status, body, tc.message)
			}
			if after := everything(t, env); after != before {
				t.Errorf("a rejected %s changed the VPC", tc.action)
			}
		})
	}
	// The highest device index the type has works.
	env.Attach(t, eni, inst, 2)
}
