package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// ttl is what the answers carry: short, as the Route 53 Resolver's private names, because an
// ENI's address may go to another interface.
const ttl = 60

// Handler answers queries from the current records, which Set replaces atomically.
type Handler struct {
	records atomic.Pointer[Records]
}

// Set replaces the records.
func (h *Handler) Set(r *Records) { h.records.Store(r) }

// ServeDNS answers one query: an A record for a known name, an empty answer (NOERROR) for its
// other types, a PTR for a known address, NXDOMAIN for the rest. The resolver is recursive
// (RA) and not authoritative, as the Route 53 Resolver; it answers only standard queries with
// one question.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.SetRcode(req, dns.RcodeNotImplemented)
	case len(req.Question) != 1:
		m.SetRcode(req, dns.RcodeFormatError)
	default:
		m.SetReply(req)
		m.RecursionAvailable = true
		h.answer(m, req.Question[0])
	}
	_ = w.WriteMsg(m) // a client gone is no error of ours
}

func (h *Handler) answer(m *dns.Msg, q dns.Question) {
	recs := h.records.Load()
	if recs == nil {
		recs = &Records{}
	}
	name := strings.ToLower(q.Name)
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeNameError
		return
	}
	if a, ok := recs.A[name]; ok {
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IP(a.AsSlice())})
		}
		return
	}
	if ptr, ok := recs.PTR[name]; ok {
		if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
			hdr.Rrtype = dns.TypePTR
			m.Answer = append(m.Answer, &dns.PTR{Hdr: hdr, Ptr: ptr})
		}
		return
	}
	m.Rcode = dns.RcodeNameError
}

// Server serves a Handler on one UDP socket and one TCP listener.
type Server struct {
	udp, tcp *dns.Server
	done     sync.WaitGroup
}

// Serve starts answering on pc (UDP) and ln (TCP), which the server owns from now on.
func Serve(h dns.Handler, pc net.PacketConn, ln net.Listener) *Server {
	s := &Server{udp: &dns.Server{PacketConn: pc, Handler: h}, tcp: &dns.Server{Listener: ln, Handler: h}}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started, ended := make(chan struct{}), make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			defer close(ended)
			_ = srv.ActivateAndServe() // ends with Shutdown, or when its socket fails
		}()
		// Shutdown before the server has started would not stop it; a server that ended at
		// once (a broken socket) never starts.
		select {
		case <-started:
		case <-ended:
		}
	}
	return s
}

// Close stops both listeners and waits for their loops to end.
func (s *Server) Close() error {
	ctx := context.Background()
	err := errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
	s.done.Wait()
	if err != nil {
		return fmt.Errorf("stopping the VPC resolver: %w", err)
	}
	return nil
}
