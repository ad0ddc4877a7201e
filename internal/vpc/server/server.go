package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/idgen"
	"github.com/podsg/podsg/internal/vpc/query"
)

// maxBodyBytes bounds a request body; EC2 requests are small.
const maxBodyBytes = 1 << 20

// Options configure a Server.
type Options struct {
	// Router serves EC2 (Version 2016-11-15), the default when a request names no version.
	Router *query.Router
	// Services are further APIs on the same endpoint, chosen by the request's Version (RDS).
	Services []*query.Service
	// Registry receives the server's metrics and is served on /metrics.
	Registry *prometheus.Registry
	Clock    clock.PassiveClock
	IDs      idgen.Source
	// Credentials, when non-nil, turn on SigV4 verification of long-term keys.
	Credentials Credentials
	// Sessions resolves temporary credentials (the local STS's); requests
	// signed with them are always verified. Nil: none are accepted.
	Sessions Sessions
	Profile  Profile
	// RequestLog, when set, receives one JSON line per API request.
	RequestLog io.Writer
	// Sleep waits for injected latency; defaults to a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration)
	Log   logr.Logger
}

// Server is the HTTP handler of the local VPC.
type Server struct {
	opts     Options
	metrics  *metrics
	throttle *throttler
	faults   *injector
	ec2      *query.Service
	services map[string]*query.Service // by Version, besides ec2
	mux      *http.ServeMux
	logMu    sync.Mutex
}

// New builds the handler.
func New(opts Options) (*Server, error) {
	if opts.Router == nil || opts.Registry == nil {
		return nil, fmt.Errorf("server: router and registry are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.IDs == nil {
		opts.IDs = idgen.Crypto{}
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepCtx
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	s := &Server{
		opts:     opts,
		metrics:  m,
		throttle: newThrottler(opts.Profile.Throttle),
		faults:   newInjector(opts.Profile.Faults, opts.Clock.Now()),
		ec2:      query.EC2(opts.Router),
		services: map[string]*query.Service{},
		mux:      http.NewServeMux(),
	}
	for _, svc := range opts.Services {
		if svc.Version == query.Version || s.services[svc.Version] != nil {
			return nil, fmt.Errorf("server: two services with version %s", svc.Version)
		}
		s.services[svc.Version] = svc
	}
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.Handle("/metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", s.serveAPI)
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// outcome is what one API call produced, for metrics and the request log.
type outcome struct {
	action string
	code   string
	status int
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Clock.Now()
	reqID := idgen.UUID(s.opts.IDs)
	var buf bytes.Buffer
	out := s.handle(r, reqID, &buf)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(out.status)
	_, _ = w.Write(buf.Bytes())

	elapsed := s.opts.Clock.Since(start)
	s.metrics.requests.WithLabelValues(out.action, out.code).Inc()
	s.metrics.duration.WithLabelValues(out.action).Observe(elapsed.Seconds())
	s.logRequest(r, reqID, out, elapsed)
}

// handle runs one API call, writing the XML body to buf.
func (s *Server) handle(r *http.Request, reqID string, buf *bytes.Buffer) outcome {
	action, svc := actionUnknown, s.ec2
	req, err := s.decode(r)
	if err == nil {
		svc = req.svc
		if _, known := svc.Router.Lookup(req.Action); known {
			action = req.Action
		}
		req.RequestID = reqID
		err = s.call(r.Context(), svc, &req.Request)(buf)
	}
	if err == nil {
		return outcome{action: action, code: codeSuccess, status: http.StatusOK}
	}
	e, ok := apierr.As(err)
	if !ok {
		s.opts.Log.Error(err, "request failed", "action", action, "requestId", reqID)
		e = apierr.Internal()
	}
	buf.Reset()
	_ = svc.WriteError(buf, e, reqID)
	return outcome{action: action, code: e.Code, status: e.HTTPStatus()}
}

// request is a decoded call and the service it is for.
type request struct {
	query.Request
	svc *query.Service
}

// decode reads and authenticates the request, extracts its parameters and picks the service.
func (s *Server) decode(r *http.Request) (*request, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, &apierr.Error{Code: "InvalidHttpRequest", Message: "Only GET and POST are supported.", Status: http.StatusMethodNotAllowed}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		return nil, &apierr.Error{Code: "InvalidHttpRequest", Message: "The request body could not be read or is too large.", Status: http.StatusRequestEntityTooLarge}
	}
	// The service and action are read before the signature is checked: an
	// action that takes no signature (STS's AssumeRoleWithWebIdentity) is
	// served unsigned. A request that does not parse is still
	// authenticated first, so an unsigned caller learns nothing of it.
	values, perr := requestValues(r, body)
	var params query.Params
	svc, unsigned := s.ec2, false
	if perr == nil {
		params = query.FromValues(values)
		if v := params.String("Version"); v != "" && v != query.Version {
			svc = s.services[v]
		}
		unsigned = svc != nil && slices.Contains(svc.Unsigned, params.String("Action"))
	}
	caller, err := s.authenticate(r, body, unsigned)
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	action, err := params.Required("Action")
	if err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, apierr.New("NoSuchVersion", "The requested version (%s) of service AmazonEC2 does not exist", params.String("Version"))
	}
	return &request{Request: query.Request{Action: action, Params: params, Caller: caller}, svc: svc}, nil
}

// requestValues are the parameters of the query string and of a form
// body, which must name the action and the version at most once.
func requestValues(r *http.Request, body []byte) (url.Values, error) {
	values := r.URL.Query()
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPost && (ct == "application/x-www-form-urlencoded" || ct == "") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, apierr.InvalidValue("The request body is not valid form encoding.")
		}
		for k, v := range form {
			values[k] = append(values[k], v...)
		}
	}
	if err := checkSingle(values, "Action", "Version"); err != nil {
		return nil, err
	}
	return values, nil
}

// checkSingle rejects a request that gives one of names more than once (in
// the query string, the form body or both): which one counts would be a
// guess, and a proxy or log that reads the other would see another call
// than the one that runs.
func checkSingle(values url.Values, names ...string) error {
	for _, n := range names {
		if vs := values[n]; len(vs) > 1 {
			return apierr.New(apierr.CodeInvalidParameter, "The parameter %s must be given once; this request gives it %d times (%s).",
				n, len(vs), strings.Join(vs, ", "))
		}
	}
	return nil
}

// call applies the realism knobs and runs the handler, returning a writer
// for its response. A panicking handler becomes InternalError.
func (s *Server) call(ctx context.Context, svc *query.Service, req *query.Request) func(*bytes.Buffer) error {
	h, ok := svc.Router.Lookup(req.Action)
	if !ok {
		return fail(apierr.New(apierr.CodeInvalidAction, "The action %s is not valid for this web service.", req.Action))
	}
	now := s.opts.Clock.Now()
	if !s.throttle.allow(req.Action, req.Params, now) {
		return fail(apierr.Throttled())
	}
	if e := s.faults.check(req.Action, now); e != nil {
		return fail(e)
	}
	if d := s.latency(req.Action); d > 0 {
		s.opts.Sleep(ctx, d)
	}
	resp, err := s.invoke(ctx, h, req)
	if err != nil {
		return fail(err)
	}
	return func(buf *bytes.Buffer) error { return svc.WriteResponse(buf, req.Action, req.RequestID, resp) }
}

func fail(err error) func(*bytes.Buffer) error { return func(*bytes.Buffer) error { return err } }

func (s *Server) invoke(ctx context.Context, h query.Handler, req *query.Request) (resp query.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.opts.Log.Error(fmt.Errorf("panic: %v", p), "handler panicked", "action", req.Action, "requestId", req.RequestID, "stack", string(debug.Stack()))
			resp, err = nil, apierr.Internal()
		}
	}()
	resp, err = h(ctx, req)
	if err == nil && resp == nil {
		err = errors.New("handler returned no response")
	}
	return resp, err
}

func (s *Server) latency(action string) time.Duration {
	if d, ok := s.opts.Profile.Latency.Actions[action]; ok {
		return d.Duration
	}
	return s.opts.Profile.Latency.Default.Duration
}

type logLine struct {
	Time       time.Time `json:"time"`
	RequestID  string    `json:"requestId"`
	Action     string    `json:"action"`
	Code       string    `json:"code"`
	Status     int       `json:"status"`
	DurationMs float64   `json:"durationMs"`
	Remote     string    `json:"remote"`
	// UserAgent names the client (SDK, awscli, controller): with Remote, it answers "who
	// deleted that ENI" when several programs share one local VPC.
	UserAgent string `json:"userAgent"`
}

func (s *Server) logRequest(r *http.Request, reqID string, out outcome, d time.Duration) {
	if s.opts.RequestLog == nil {
		return
	}
	line, _ := json.Marshal(logLine{
		Time: s.opts.Clock.Now().UTC(), RequestID: reqID, Action: out.action, Code: out.code, Status: out.status,
		DurationMs: float64(d.Microseconds()) / 1000, Remote: r.RemoteAddr, UserAgent: r.UserAgent(),
	})
	s.logMu.Lock()
	defer s.logMu.Unlock()
	_, _ = s.opts.RequestLog.Write(append(line, '\n'))
}
