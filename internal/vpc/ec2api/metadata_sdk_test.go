package ec2api_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// metadataOptions reads an instance's options with DescribeInstances.
func metadataOptions(t *testing.T, env *vpctest.Env, id string) types.InstanceMetadataOptionsResponse {
	t.Helper()
	out, err := env.Client.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	mo := out.Reservations[0].Instances[0].MetadataOptions
	if mo == nil {
		t.Fatal("DescribeInstances without MetadataOptions")
	}
	return *mo
}

func optionsString(m types.InstanceMetadataOptionsResponse) string {
	return strings.Join([]string{string(m.State), string(m.HttpTokens), fmtInt32(m.HttpPutResponseHopLimit), string(m.HttpEndpoint),
		string(m.HttpProtocolIpv6), string(m.InstanceMetadataTags)}, " ")
}

func fmtInt32(p *int32) string {
	if p == nil {
		return "nil"
	}
	return strconv.Itoa(int(*p))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestModifyInstanceMetadataOptions: an instance starts with EC2's defaults
// (hop limit 1); ModifyInstanceMetadataOptions changes the options it is
// given and keeps the others; DescribeInstances reports them.
func TestModifyInstanceMetadataOptions(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	id := *env.NewInstance(t, *subnet.SubnetId, "m5.large").InstanceId
	if got, want := optionsString(metadataOptions(t, env, id)), "applied optional 1 enabled disabled disabled"; got != want {
		t.Fatalf("default options %q, want %q", got, want)
	}
	out, err := env.Client.ModifyInstanceMetadataOptions(t.Context(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpPutResponseHopLimit: aws.Int32(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	if *out.InstanceId != id || optionsString(*out.InstanceMetadataOptions) != "pending optional 2 enabled disabled disabled" {
		t.Errorf("answer: %s %q", *out.InstanceId, optionsString(*out.InstanceMetadataOptions))
	}
	if _, err := env.Client.ModifyInstanceMetadataOptions(t.Context(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpTokens: types.HttpTokensStateRequired,
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := optionsString(metadataOptions(t, env, id)), "applied required 2 enabled disabled disabled"; got != want {
		t.Errorf("after two modifications %q, want %q", got, want)
	}
}

// TestModifyInstanceMetadataOptionsRejects: each bad request gets EC2's
// error code and changes nothing.
func TestModifyInstanceMetadataOptionsRejects(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	id := *env.NewInstance(t, *subnet.SubnetId, "m5.large").InstanceId
	gone := *env.NewInstance(t, *subnet.SubnetId, "m5.large").InstanceId
	if _, err := env.Client.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}
	before := optionsString(metadataOptions(t, env, id))
	tests := map[string]struct {
		params url.Values
		code   string
	}{
		"hop limit 0":            {url.Values{"HttpPutResponseHopLimit": {"0"}}, "InvalidParameterValue"},
		"hop limit 65":           {url.Values{"HttpPutResponseHopLimit": {"65"}}, "InvalidParameterValue"},
		"hop limit -1":           {url.Values{"HttpPutResponseHopLimit": {"-1"}}, "InvalidParameterValue"},
		"hop limit not a number": {url.Values{"HttpPutResponseHopLimit": {"two"}}, "InvalidParameterValue"},
		"tokens sometimes":       {url.Values{"HttpTokens": {"sometimes"}}, "InvalidParameterValue"},
		"endpoint off":           {url.Values{"HttpEndpoint": {"off"}}, "InvalidParameterValue"},
		"valid and invalid":      {url.Values{"HttpTokens": {"required"}, "HttpPutResponseHopLimit": {"100"}}, "InvalidParameterValue"},
		"tags in metadata":       {url.Values{"InstanceMetadataTags": {"enabled"}}, "UnsupportedOperation"},
		"ipv6 endpoint":          {url.Values{"HttpProtocolIpv6": {"enabled"}}, "UnsupportedOperation"},
		"no instance":            {url.Values{"InstanceId": nil, "HttpPutResponseHopLimit": {"2"}}, "MissingParameter"},
		"unknown instance":       {url.Values{"InstanceId": {"i-0123456789abcdef0"}, "HttpPutResponseHopLimit": {"2"}}, "InvalidInstanceID.NotFound"},
		"malformed instance id":  {url.Values{"InstanceId": {"i-nope"}, "HttpPutResponseHopLimit": {"2"}}, "InvalidInstanceID.Malformed"},
		"terminated instance":    {url.Values{"InstanceId": {gone}, "HttpPutResponseHopLimit": {"2"}}, "IncorrectInstanceState"},
		"dry run":                {url.Values{"HttpPutResponseHopLimit": {"2"}, "DryRun": {"true"}}, "DryRunOperation"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			form := url.Values{"Action": {"ModifyInstanceMetadataOptions"}, "Version": {"2016-11-15"}, "InstanceId": {id}}
			for k, v := range tc.params {
				if v == nil {
					form.Del(k)
					continue
				}
				form[k] = v
			}
			resp, err := http.PostForm(env.URL, form)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body := readAll(t, resp)
			if resp.StatusCode == 200 || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
				t.Fatalf("got %d %s, want %s", resp.StatusCode, body, tc.code)
			}
			if after := optionsString(metadataOptions(t, env, id)); after != before {
				t.Errorf("a rejected request changed the options: %q -> %q", before, after)
			}
		})
	}
}

// TestRunInstancesMetadataOptions: RunInstances takes MetadataOptions
// (EKS node groups launch with hop limit 2) and refuses bad ones without
// launching anything.
func TestRunInstancesMetadataOptions(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	run := func(mo *types.InstanceMetadataOptionsRequest) (*ec2.RunInstancesOutput, error) {
		return env.Client.RunInstances(t.Context(), &ec2.RunInstancesInput{
			ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Large, SubnetId: subnet.SubnetId,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), MetadataOptions: mo,
		})
	}
	out, err := run(&types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(2), HttpTokens: types.HttpTokensStateRequired})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := optionsString(metadataOptions(t, env, *out.Instances[0].InstanceId)), "applied required 2 enabled disabled disabled"; got != want {
		t.Errorf("launched with %q, want %q", got, want)
	}
	_, err = run(&types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	all, err := env.Client.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all.Reservations); n != 1 {
		t.Errorf("%d reservations after a refused launch, want 1", n)
	}
}
