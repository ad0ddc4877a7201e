// Package instancetypes owns the table of EC2 instance types podsg knows:
// network limits (ENIs, IPv4 addresses per ENI) and branch-ENI (trunking)
// limits, embedded as types.json so the emulator and the controller agree.
package instancetypes
