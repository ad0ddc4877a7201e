// Package conformance checks the local VPC with clients and implementations of the EC2 API that
// podsg did not write:
//   - awscli runs testdata/awscli-session.sh, as a user types it, against podsg-vpc (in `make test`);
//   - a differential test runs one request sequence against podsg-vpc and against moto_server (a
//     widely used EC2 emulator) and compares what both answer, after normalising ids, addresses
//     and timestamps; differences that are moto's bugs are listed in the test with the reason.
//     moto comes only from PyPI, which a fresh machine cannot reach, so that test is behind the
//     `moto` build tag: `make test-moto` on a machine that has moto_server.
package conformance
