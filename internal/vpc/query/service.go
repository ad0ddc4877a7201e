package query

import (
	"encoding/xml"
	"io"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Service is one AWS API served on the local VPC's endpoint. Requests pick it by their
// Version parameter, the way AWS's query protocols name their API: EC2 (2016-11-15) answers in
// the ec2 query style, RDS (2014-10-31) in the awsquery style, so one --endpoint-url serves
// both `aws ec2` and `aws rds`.
type Service struct {
	Name      string // for messages: "AmazonEC2", "AmazonRDS"
	Version   string
	Namespace string
	// AWSQuery selects the awsquery envelope (<ActionResult>, <ResponseMetadata>,
	// <ErrorResponse>) instead of EC2's (<requestId>, <Response><Errors>).
	AWSQuery bool
	Router   *Router
	// Unsigned lists the actions that take no signature, as on AWS (STS's
	// AssumeRoleWithWebIdentity: the token is the credential).
	Unsigned []string
}

// EC2 returns the EC2 service around router.
func EC2(router *Router) *Service {
	return &Service{Name: "AmazonEC2", Version: Version, Namespace: Namespace, Router: router}
}

// WriteResponse encodes resp as the action's response in the service's style.
func (s *Service) WriteResponse(w io.Writer, action, requestID string, resp Response) error {
	if !s.AWSQuery {
		return WriteResponse(w, action, requestID, resp)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	root := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: s.Namespace}}}
	if err := enc.EncodeToken(root); err != nil {
		return err
	}
	if err := enc.EncodeElement(resp, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		return err
	}
	meta := struct {
		RequestID string `xml:"RequestId"`
	}{requestID}
	if err := enc.EncodeElement(meta, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return err
	}
	if err := enc.EncodeToken(root.End()); err != nil {
		return err
	}
	return enc.Flush()
}

// WriteError encodes e in the service's error envelope.
func (s *Service) WriteError(w io.Writer, e *apierr.Error, requestID string) error {
	if !s.AWSQuery {
		return WriteError(w, e, requestID)
	}
	typ := "Sender"
	if e.HTTPStatus() >= 500 {
		typ = "Receiver"
	}
	body := struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}{Xmlns: s.Namespace, RequestID: requestID}
	body.Error.Type, body.Error.Code, body.Error.Message = typ, e.Code, e.Message
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	return xml.NewEncoder(w).Encode(body)
}

// Result is embedded in awsquery response bodies in place of Envelope: the request id goes
// into <ResponseMetadata>, not the body.
type Result struct{}

// SetRequestID implements Response; awsquery bodies carry no request id of their own.
func (Result) SetRequestID(string) {}
