// Package resolver is the local VPC's DNS resolver, what AWS calls AmazonProvidedDNS (the Route 53
// Resolver at the VPC's base address + 2): it answers, over UDP and TCP, the private DNS names of
// the VPC's network interfaces (ip-10-0-0-5.REGION.compute.internal, and their reverse names),
// the endpoint hostnames of its RDS instances (ID.HASH.REGION.rds.amazonaws.com), and NXDOMAIN
// for every other name: the local VPC has no internet. It also owns those names' rules, so that
// the RDS API, the token check and the resolver agree on one hostname.
package resolver
