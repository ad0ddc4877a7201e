package query

import (
	"encoding/xml"
	"io"
	"time"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Namespace is the EC2 API XML namespace for API version 2016-11-15.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Version is the only API version served.
const Version = "2016-11-15"

// Envelope is embedded in every response body struct and renders its
// <requestId>; WriteResponse wraps the body in <ActionResponse xmlns=…>.
type Envelope struct {
	RequestID string `xml:"requestId"`
}

// SetRequestID records the request id.
func (e *Envelope) SetRequestID(id string) { e.RequestID = id }

// Response is a response body: a struct embedding Envelope.
type Response interface {
	SetRequestID(id string)
}

// ReturnResponse is the body of actions that answer <return>true</return>.
type ReturnResponse struct {
	Envelope
	Return bool `xml:"return"`
}

// WriteResponse encodes resp as the action's XML response.
func WriteResponse(w io.Writer, action, requestID string, resp Response) error {
	resp.SetRequestID(requestID)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	// The root element is named explicitly: encoding/xml cannot name
	// anonymous structs, and the handlers' bodies are anonymous.
	root := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: Namespace}},
	}
	return xml.NewEncoder(w).EncodeElement(resp, root)
}

type errorEnvelope struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []errorXML `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type errorXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// WriteError encodes the EC2 error envelope.
func WriteError(w io.Writer, e *apierr.Error, requestID string) error {
	body := errorEnvelope{Errors: []errorXML{{Code: e.Code, Message: e.Message}}, RequestID: requestID}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	return xml.NewEncoder(w).Encode(body)
}

// Time renders a timestamp the way EC2 does.
func Time(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
