package state

import (
	"cmp"
	"slices"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Instance metadata option values, as EC2 spells them.
const (
	HTTPTokensOptional = "optional"
	HTTPTokensRequired = "required"
	EndpointEnabled    = "enabled"
	EndpointDisabled   = "disabled"
	// MaxHopLimit bounds HttpPutResponseHopLimit (1..64 on EC2).
	MaxHopLimit = 64
)

// MetadataOptions are an instance's metadata service options. Zero fields
// are EC2's defaults (tokens optional, hop limit 1, endpoint enabled): read
// them through the methods.
type MetadataOptions struct {
	HTTPTokens   string `json:"httpTokens,omitempty"`
	HopLimit     int    `json:"httpPutResponseHopLimit,omitempty"`
	HTTPEndpoint string `json:"httpEndpoint,omitempty"`
}

// Tokens is HttpTokens: optional or required.
func (m MetadataOptions) Tokens() string { return cmp.Or(m.HTTPTokens, HTTPTokensOptional) }

// PutResponseHopLimit is HttpPutResponseHopLimit, 1..64.
func (m MetadataOptions) PutResponseHopLimit() int { return max(m.HopLimit, 1) }

// Endpoint is HttpEndpoint: enabled or disabled.
func (m MetadataOptions) Endpoint() string { return cmp.Or(m.HTTPEndpoint, EndpointEnabled) }

// MetadataOptionsInput is ModifyInstanceMetadataOptions' request (and
// RunInstances' MetadataOptions); nil fields keep their value.
type MetadataOptionsInput struct {
	HTTPTokens   *string
	HopLimit     *int
	HTTPEndpoint *string
	// HTTPProtocolIPv6 and InstanceMetadataTags are accepted when
	// "disabled", the only state the local VPC models.
	HTTPProtocolIPv6     *string
	InstanceMetadataTags *string
}

func (in MetadataOptionsInput) validate() error {
	if err := oneOf("HttpTokens", in.HTTPTokens, HTTPTokensOptional, HTTPTokensRequired); err != nil {
		return err
	}
	if err := oneOf("HttpEndpoint", in.HTTPEndpoint, EndpointEnabled, EndpointDisabled); err != nil {
		return err
	}
	if in.HopLimit != nil && (*in.HopLimit < 1 || *in.HopLimit > MaxHopLimit) {
		return apierr.InvalidValue("Value (%d) for parameter HttpPutResponseHopLimit is invalid. Expected a value between 1 and %d.", *in.HopLimit, MaxHopLimit)
	}
	for _, o := range []struct {
		name string
		v    *string
	}{{"HttpProtocolIpv6", in.HTTPProtocolIPv6}, {"InstanceMetadataTags", in.InstanceMetadataTags}} {
		if err := oneOf(o.name, o.v, EndpointEnabled, EndpointDisabled); err != nil {
			return err
		}
		if o.v != nil && *o.v == EndpointEnabled {
			return apierr.New(apierr.CodeUnsupportedOperation, "%s=enabled is not supported by the local VPC (no IPv6, no tags in instance metadata).", o.name)
		}
	}
	return nil
}

func oneOf(name string, v *string, allowed ...string) error {
	if v != nil && !slices.Contains(allowed, *v) {
		return apierr.InvalidValue("Value (%s) for parameter %s is invalid. Supported values: %s, %s.", *v, name, allowed[0], allowed[1])
	}
	return nil
}

// apply returns m changed by in (validated).
func (in MetadataOptionsInput) apply(m MetadataOptions) MetadataOptions {
	if in.HTTPTokens != nil {
		m.HTTPTokens = *in.HTTPTokens
	}
	if in.HopLimit != nil {
		m.HopLimit = *in.HopLimit
	}
	if in.HTTPEndpoint != nil {
		m.HTTPEndpoint = *in.HTTPEndpoint
	}
	return m
}

// ModifyInstanceMetadataOptions changes a running instance's metadata
// options; the data path applies them before the call returns.
func (tx *Tx) ModifyInstanceMetadataOptions(id string, in MetadataOptionsInput) (*Instance, error) {
	inst, err := tx.lookupInstance(id)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	if inst.State != InstanceRunning {
		return nil, apierr.New("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", inst.ID)
	}
	c := inst.clone()
	c.MetadataOptions = in.apply(inst.MetadataOptions)
	put(tx, tx.m.instances, c.ID, c)
	return c, nil
}
