// Package conformance checks the local VPC with clients and implementations of the EC2 API that
// podsg did not write:
//   - awscli runs testdata/awscli-session.sh, as a user types it, against podsg-vpc (in `make test`);
//   - awscli and psql run IAM roles for service accounts end to end (TestAWSCLIRDSIAMAuth, e2e
//     tier): a real kube-apiserver issues a pod's projected token, podsg's pod identity webhook
//     gives the pod its role, the local STS exchanges the token and RDS checks the IAM auth token;
//   - a differential test runs one request sequence against podsg-vpc and against moto_server (a
//     widely used EC2 emulator) and compares what both answer, after normalising ids, addresses
//     and timestamps; differences that are moto's bugs are listed in the test with the reason.
//     moto comes only from PyPI, which a fresh machine cannot reach, so that test is behind the
//     `moto` build tag: `make test-moto` on a machine that has moto_server.
package conformance
