package query

import (
	"bytes"
	"testing"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

func TestWriteResponse(t *testing.T) {
	var b bytes.Buffer
	resp := &struct {
		Envelope
		Items []string `xml:"itemSet>item"`
	}{Items: []string{"a", "b"}}
	if err := WriteResponse(&b, "DescribeThings", "req-1", resp); err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<DescribeThingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId><itemSet><item>a</item><item>b</item></itemSet></DescribeThingsResponse>`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteError(t *testing.T) {
	var b bytes.Buffer
	if err := WriteError(&b, apierr.New("InvalidGroup.NotFound", "The security group '<x>' does not exist"), "req-2"); err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>The security group &#39;&lt;x&gt;&#39; does not exist</Message></Error></Errors><RequestID>req-2</RequestID></Response>`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
