package webhook

import (
	"crypto/tls"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// NewServer is podsg-controller's webhook server: controller-runtime's, offering HTTP/1.1
// only in TLS's protocol negotiation, so that the apiserver sends each call on a connection
// of its own instead of multiplexing them all over one HTTP/2 connection.
//
// Measured (README, "podsg-controller at size"): over HTTP/2, every call's request body,
// flow-control credit and answer pass through the connection's one serving goroutine, in
// several hand-offs per call (Go's server blocks the handler on each), and at 600 webhook
// calls a second on 2 busy cores that goroutine was the queue: 98 % of a call's time in the
// process was spent reading the body (half of it blocked sending to that goroutine, the rest
// runnable behind a mean of 68 goroutines, most of them calls waiting the same way), for
// 0.8 ms running. Over HTTP/1.1 the handler reads the request from and writes the answer to its own
// connection. It also keeps the webhook out of HTTP/2's stream-reset floods (CVE-2023-44487),
// the reason kubebuilder's scaffolding turns HTTP/2 off.
func NewServer(o crwebhook.Options) crwebhook.Server {
	o.TLSOpts = append(slices.Clone(o.TLSOpts), HTTP1Only)
	return crwebhook.NewServer(o)
}

// HTTP1Only makes a TLS server offer HTTP/1.1 alone in ALPN.
func HTTP1Only(c *tls.Config) {
	c.NextProtos = []string{"http/1.1"}
}

// CountHandshakes returns a TLS option counting the webhook server's handshakes in
// podsg_webhook_tls_handshakes_total on reg. Over HTTP/1.1 each call in flight needs a
// connection of its own, and the apiserver keeps at most 25 idle ones per webhook host
// (client-go's transport): when more calls are in flight, the rest are made on new
// connections, closed after, each with a full handshake (the apiserver keeps no TLS session
// cache). Handshakes a second close to calls a second say the apiserver is churning them.
func CountHandshakes(reg prometheus.Registerer) (func(*tls.Config), error) {
	n := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "podsg_webhook_tls_handshakes_total",
		Help: "TLS handshakes completed by podsg-controller's webhook server (one per new connection).",
	})
	if err := reg.Register(n); err != nil {
		return nil, err
	}
	return func(c *tls.Config) {
		next := c.VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if next != nil {
				if err := next(cs); err != nil {
					return err
				}
			}
			n.Inc()
			return nil
		}
	}, nil
}
