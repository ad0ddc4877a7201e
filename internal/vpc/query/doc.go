// Package query owns the EC2 Query protocol: decoding form parameters
// (flattened lists such as Filter.N.Value.M and TagSpecification.N.Tag.M.Key),
// filter matching, pagination tokens, action routing and the XML response and
// error envelopes.
package query
