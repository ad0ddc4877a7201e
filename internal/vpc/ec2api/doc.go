// Package ec2api owns the EC2 action handlers: each decodes its Query
// parameters, runs the state transaction and renders the XML the AWS SDKs
// expect. One file per resource family.
package ec2api
