// Package conformance checks the local VPC against other implementations of the EC2 API. Its
// test runs one request sequence against podsg-vpc and against moto_server (a widely used EC2
// emulator, preinstalled on podsg's test machines) and compares what both answer, after
// normalising ids, addresses and timestamps. Differences that are moto's bugs are listed in the
// test with the reason.
package conformance
