// Package cloud holds what podsg knows about EC2 independent of how it is reached: the domain
// types its components exchange and the typed errors every EC2 call is classified into.
// Package cloud/ec2 implements the calls over aws-sdk-go-v2, pointed at AWS or at the local
// VPC (podsg-vpc); consumers declare the few methods they use as their own small interfaces.
package cloud
