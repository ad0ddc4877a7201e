package ec2

import (
	"bytes"
	"io"
	"net/http"
)

// BufferedBodies copies each request body into a plain buffer before sending. smithy-go closes
// the request body as soon as a response arrives, and its closed body's WriteTo returns io.EOF;
// when the server answers before net/http's final end-of-body read (a loopback endpoint like
// the local VPC does, about 1% of the time), the transport takes that io.EOF for a write error
// and closes the connection under the response ("use of closed network connection"). EC2
// request bodies are small, so buffering costs nothing that matters.
func BufferedBodies(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil && req.Body != http.NoBody {
			b, err := io.ReadAll(req.Body)
			_ = req.Body.Close()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(b))
		}
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
