package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// signedRequest is an EC2 Query request as a client signs it: payloadHash is
// the hash the signature covers, header (if not empty) an
// X-Amz-Content-Sha256 header set before signing, so that it is signed.
func signedRequest(t *testing.T, env *vpctest.Env, body, payloadHash, header string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if header != "" {
		req.Header.Set("X-Amz-Content-Sha256", header)
	}
	creds := aws.Credentials{AccessKeyID: "AKIDLOCAL", SecretAccessKey: "s3cr3t"}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, payloadHash, "ec2", vpctest.Region, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// withBody is req with its headers (signature included) and another body.
func withBody(t *testing.T, req *http.Request, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(req.Method, req.URL.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = req.Header.Clone()
	return r
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSigV4PayloadHash: the signature covers the body through the hash the
// server computes of it. A captured signature replayed with another body
// fails, even with the original body's hash in an X-Amz-Content-Sha256
// header; a header that disagrees with the body is refused as S3 refuses
// it; none of the refused requests changes anything.
func TestSigV4PayloadHash(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{Credentials: server.Credentials{"AKIDLOCAL": "s3cr3t"}, AccessKey: "AKIDLOCAL", SecretKey: "s3cr3t"})
	describe := "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=owner-id&Filter.1.Value.1=000000000000"
	// The replayed body has the captured one's length, in case the client
	// signed Content-Length.
	create := "Action=CreateVpc&CidrBlock=10.0.0.0%2F16&Version=2016-11-15&Pad="
	create += strings.Repeat("x", len(describe)-len(create))
	captured := signedRequest(t, env, describe, sha256Hex(describe), "")

	tests := map[string]struct {
		req    func() *http.Request
		status int
		want   string
	}{
		"signed request": {func() *http.Request { return captured }, 200, "<DescribeVpcsResponse"},
		"replayed with another body and the old body's hash in a header": {func() *http.Request {
			r := withBody(t, captured, create)
			r.Header.Set("X-Amz-Content-Sha256", sha256Hex(describe))
			return r
		}, 400, "<Code>XAmzContentSHA256Mismatch</Code>"},
		"replayed with another body": {func() *http.Request { return withBody(t, captured, create) }, 403, "<Code>SignatureDoesNotMatch</Code>"},
		"signed header that disagrees with the body": {func() *http.Request {
			return signedRequest(t, env, create, sha256Hex(describe), sha256Hex(describe))
		}, 400, "<Code>XAmzContentSHA256Mismatch</Code>"},
		"two headers": {func() *http.Request {
			r := signedRequest(t, env, describe, sha256Hex(describe), sha256Hex(describe))
			r.Header.Add("X-Amz-Content-Sha256", sha256Hex(create))
			return r
		}, 400, "<Code>XAmzContentSHA256Mismatch</Code>"},
		"signed header that agrees with the body": {func() *http.Request {
			return signedRequest(t, env, describe, sha256Hex(describe), strings.ToUpper(sha256Hex(describe)))
		}, 200, "<DescribeVpcsResponse"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := send(t, tc.req())
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s, want %d with %s", status, body, tc.status, tc.want)
			}
		})
	}
	out, err := env.Client.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Vpcs) != 0 {
		t.Errorf("a refused request created %d VPCs", len(out.Vpcs))
	}
	// The SDK's own client signs every request this way.
	if _, err := env.Client.CreateVpc(t.Context(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}); err != nil {
		t.Fatalf("SDK request refused: %v", err)
	}
}

// TestDuplicateAction: a request naming its action (or version) twice, in
// the query string, the body or both, is refused, and nothing runs.
func TestDuplicateAction(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	create := url.Values{"Action": {"CreateVpc"}, "CidrBlock": {"10.0.0.0/16"}, "Version": {"2016-11-15"}}
	tests := map[string]struct {
		query string
		body  url.Values
		want  string
	}{
		"query and body":     {"Action=DescribeVpcs", create, "Action"},
		"twice in the body":  {"", url.Values{"Action": {"CreateVpc", "DescribeVpcs"}, "CidrBlock": {"10.0.0.0/16"}}, "Action"},
		"twice in the query": {"Action=CreateVpc&Action=DescribeVpcs&CidrBlock=10.0.0.0%2F16", nil, "Action"},
		"same action twice":  {"Action=CreateVpc", create, "Action"},
		"two versions":       {"Version=2014-10-31", create, "Version"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u := env.URL + "/"
			if tc.query != "" {
				u += "?" + tc.query
			}
			status, body := post(t, u, tc.body)
			if status != 400 || !strings.Contains(body, "<Code>InvalidParameter</Code>") || !strings.Contains(body, "parameter "+tc.want+" must be given once") {
				t.Fatalf("got %d %s, want 400 InvalidParameter naming %s", status, body, tc.want)
			}
		})
	}
	out, err := env.Client.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Vpcs) != 0 {
		t.Errorf("a refused request created %d VPCs", len(out.Vpcs))
	}
}
