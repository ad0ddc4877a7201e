package vpccmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/podsg/podsg/internal/vpc/dataplane"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/ec2api"
	"github.com/podsg/podsg/internal/vpc/iamapi"
	"github.com/podsg/podsg/internal/vpc/imds"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/rds"
	"github.com/podsg/podsg/internal/vpc/rdsapi"
	"github.com/podsg/podsg/internal/vpc/rdsiam"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/sts"
)

// serveOptions are the serve command's flags.
type serveOptions struct {
	listen      string
	allowRemote bool
	stateDir    string
	region      string
	dataplane   string
	credentials string
	profile     string
	requestLog  string
	latency     time.Duration
	limits      state.Limits
	// imdsListen and imdsInstance serve one instance's metadata on the host (both or neither).
	imdsListen, imdsInstance string
}

func newServe(stdout io.Writer) *cobra.Command {
	o := serveOptions{limits: state.DefaultLimits()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the EC2 Query API with state persisted in --state-dir",
		Long: `Serve the EC2 Query API (version 2016-11-15) on --listen.

State lives in <state-dir>/state.db (bbolt); every acknowledged mutation is on
disk before the response is sent.

--credentials names a file with one "ACCESS_KEY_ID SECRET_KEY" pair per line
(# comments allowed); with it, requests must carry a valid SigV4 signature,
which covers the body through the hash the server computes of it (an
X-Amz-Content-Sha256 header that disagrees is refused). Without it any (or
no) signature is accepted. Temporary credentials from the local STS
(IAM and STS are served too, version 2010-05-08 and 2011-06-15) are always
verified.

--profile is a built-in profile name ("aws": EC2's documented throttling
buckets) or a YAML/JSON file with latency, throttle, faults and limits
sections; see internal/vpc/server/profile.go.

With --dataplane netns, processes inside instances (the node agent) reach
the same API (EC2, RDS, IAM and STS, same credentials, throttling and metrics) at
http://169.254.169.254:8450, like an EC2 interface VPC endpoint, next to
instance metadata on 169.254.169.254:80: --listen is on the host, which
instances cannot reach. See docs/local-vpc.md.

--imds-listen and --imds-instance serve the metadata of one instance on the
host too, for a process that runs outside every instance but reads instance
metadata (AWS's vpc-resource-controller reads its region and account from it
when it starts): point it there with
AWS_EC2_METADATA_SERVICE_ENDPOINT=http://ADDR. The instance may be launched
after serve starts; until then every path is 404.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), o, cmd.Flags().Changed, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8450", "address to listen on")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback --listen address")
	f.StringVar(&o.stateDir, "state-dir", "", "directory holding the state file (required)")
	f.StringVar(&o.region, "region", "us-west-2", "region served")
	f.StringVar(&o.dataplane, "dataplane", "none", "data path applying the state: none, or netns (root: instances as network namespaces, security groups in nftables)")
	f.StringVar(&o.credentials, "credentials", "", "file of access keys; enables SigV4 verification")
	f.StringVar(&o.profile, "profile", "", "realism profile: built-in name (aws) or YAML/JSON file")
	f.StringVar(&o.requestLog, "request-log", "", "file to append one JSON line per request to")
	f.DurationVar(&o.latency, "latency", 0, "latency added to every call (overrides the profile default)")
	f.StringVar(&o.imdsListen, "imds-listen", "", "also serve --imds-instance's instance metadata on this address (loopback unless --allow-remote)")
	f.StringVar(&o.imdsInstance, "imds-instance", "", "the instance id --imds-listen answers as")
	f.IntVar(&o.limits.SecurityGroupsPerInterface, "security-groups-per-interface", o.limits.SecurityGroupsPerInterface, "quota: security groups per ENI")
	f.IntVar(&o.limits.RulesPerSecurityGroup, "rules-per-security-group", o.limits.RulesPerSecurityGroup, "quota: inbound (and outbound) rules per group")
	_ = cmd.MarkFlagRequired("state-dir")
	return cmd
}

func serve(ctx context.Context, o serveOptions, changed func(string) bool, stdout io.Writer) error {
	log := logr.FromContextOrDiscard(ctx)
	if err := checkListen(o.listen, o.allowRemote); err != nil {
		return err
	}
	if err := checkIMDSFlags(o); err != nil {
		return err
	}
	profile, err := loadProfile(o, changed)
	if err != nil {
		return err
	}
	dp, err := dataplane.New(o.dataplane, dataplane.WithStateDir(o.stateDir), dataplane.WithRegion(o.region), dataplane.WithLog(log))
	if err != nil {
		return err
	}
	if c, ok := dp.(io.Closer); ok {
		defer func() { _ = c.Close() }() // stops the metadata listeners; kernel state stays for the next start
	}
	if err := prepareStateDir(o); err != nil {
		return err
	}
	store, err := state.Open(ctx, state.Options{
		Path: filepath.Join(o.stateDir, "state.db"), Region: o.region, Limits: limitsFor(o, profile, changed), Applier: dp,
	})
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	tokens, stopCredentials, err := startCredentials(ctx, o, dp, store, stdout, log)
	if err != nil {
		return err
	}
	defer stopCredentials() // before the store closes
	opts, err := serverOptions(ctx, o, store, tokens, profile, log)
	if err != nil {
		return err
	}
	if o.requestLog != "" {
		f, err := os.OpenFile(o.requestLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("opening request log: %w", err)
		}
		defer func() { _ = f.Close() }()
		opts.RequestLog = f
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	if ep, ok := dp.(dataplane.APIEndpoint); ok {
		// The same handler inside every instance, at 169.254.169.254:8450.
		if err := ep.SetAPIHandler(srv); err != nil {
			return fmt.Errorf("serving the API inside the VPC: %w", err)
		}
		// Stopped (requests in flight finished) before the store closes.
		defer func() { _ = ep.SetAPIHandler(nil) }()
	}
	return listenAndServe(ctx, o.listen, srv, stdout, log)
}

// startCredentials starts the local STS and gives the instance metadata services its instance
// profile credentials: those inside the instances, and the one --imds-listen serves on the host.
// stop undoes that, and must run before the store closes.
func startCredentials(ctx context.Context, o serveOptions, dp dataplane.Dataplane, store *state.Store, stdout io.Writer, log logr.Logger) (tokens *sts.STS, stop func(), err error) {
	if tokens, err = sts.New(ctx, sts.Options{Store: store}); err != nil {
		return nil, nil, err
	}
	creds := instanceCredentials(tokens)
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	if ic, ok := dp.(dataplane.InstanceCredentials); ok {
		ic.SetInstanceCredentials(creds)
		stops = append(stops, func() { ic.SetInstanceCredentials(nil) })
	}
	if o.imdsListen != "" {
		stopIMDS, err := startIMDS(ctx, o.imdsListen, o.imdsInstance, store, creds, stdout, log)
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, stopIMDS)
	}
	return tokens, stop, nil
}

// prepareStateDir creates the state directory, searchable by the databases' user when they run.
func prepareStateDir(o serveOptions) error {
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	if o.dataplane == "netns" {
		// The local RDS runs PostgreSQL as user postgres, which must traverse into
		// <state-dir>/rds: search permission only, nobody else can list the state dir.
		if err := addSearchPermission(o.stateDir); err != nil {
			return err
		}
	}
	return nil
}

// limitsFor picks the quotas: the profile's, unless a quota flag was given on the command line.
func limitsFor(o serveOptions, profile server.Profile, changed func(string) bool) state.Limits {
	if profile.Limits != nil && !changed("security-groups-per-interface") && !changed("rules-per-security-group") {
		return *profile.Limits
	}
	return o.limits
}

// serverOptions assembles the APIs served over store (EC2, and RDS on the netns data path)
// and the credentials requests are verified against.
func serverOptions(ctx context.Context, o serveOptions, store *state.Store, tokens *sts.STS, profile server.Profile, log logr.Logger) (server.Options, error) {
	opts := server.Options{Router: query.NewRouter(), Registry: prometheus.NewRegistry(), Profile: profile, Log: log}
	ec2api.New(store).Register(opts.Router)
	opts.Services = append(opts.Services, iamapi.Service(store), tokens.Service())
	opts.Sessions = tokens
	if o.credentials != "" {
		var err error
		if opts.Credentials, err = readCredentials(o.credentials); err != nil {
			return opts, err
		}
	}
	if o.dataplane == "netns" {
		// RDS needs the data path: a database is a namespace with an ENI in the VPC.
		checker := &rdsiam.Checker{Keys: connectKeys{creds: opts.Credentials, sessions: tokens}, Authorizer: tokens,
			Region: store.Region(), Account: state.AccountID}
		dbs, err := rds.New(rds.Options{Store: store, Names: topo.Names{ID: topo.IDFromStateDir(o.stateDir)}, Dir: filepath.Join(o.stateDir, "rds"),
			Region: store.Region(), Tokens: checker, Log: log.WithName("rds"), Registry: opts.Registry})
		if err != nil {
			return opts, err
		}
		if err := dbs.Resume(ctx); err != nil {
			return opts, fmt.Errorf("restarting databases: %w", err)
		}
		opts.Services = append(opts.Services, rdsapi.Service(store, dbs))
	}
	return opts, nil
}

// connectKeys resolves the keys RDS connect tokens are signed with as the API resolves
// request signatures: temporary credentials by the STS, long-term keys by --credentials, and
// without --credentials any long-term key is the account's root, unverified.
type connectKeys struct {
	creds    server.Credentials
	sessions *sts.STS
}

func (k connectKeys) Resolve(accessKeyID, sessionToken string) (rdsiam.Key, error) {
	if sessionToken != "" {
		secret, caller, err := k.sessions.Resolve(accessKeyID, sessionToken)
		return rdsiam.Key{Secret: secret, Caller: caller}, err
	}
	root := query.Root(state.AccountID, accessKeyID)
	if k.creds == nil {
		return rdsiam.Key{Caller: root, Unverified: true}, nil
	}
	secret, ok := k.creds[accessKeyID]
	if !ok {
		return rdsiam.Key{}, server.InvalidToken()
	}
	return rdsiam.Key{Secret: secret, Caller: root}, nil
}

// instanceCredentialsTTL is how long instance profile credentials last:
// six hours, as EC2's do.
const instanceCredentialsTTL = 6 * time.Hour

// instanceCredentials adapts the STS to what instance metadata asks.
func instanceCredentials(tokens *sts.STS) imds.CredentialSource {
	return func(profileARN, instanceID string) (string, imds.Credentials, bool) {
		c, role, ok := tokens.InstanceCredentials(profileARN, instanceID, instanceCredentialsTTL)
		return role, imds.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken, Expiration: c.Expiration}, ok
	}
}

func loadProfile(o serveOptions, changed func(string) bool) (server.Profile, error) {
	var p server.Profile
	if o.profile != "" {
		var err error
		if p, err = server.LoadProfile(o.profile); err != nil {
			return p, err
		}
	}
	if changed("latency") {
		p.Latency.Default = server.Duration{Duration: o.latency}
	}
	return p, nil
}

func readCredentials(path string) (server.Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening credentials: %w", err)
	}
	defer func() { _ = f.Close() }()
	return server.ParseCredentials(f)
}

// checkIMDSFlags requires --imds-listen and --imds-instance together, a well-formed instance
// id, and a loopback address unless --allow-remote: metadata hands out the account's identity.
func checkIMDSFlags(o serveOptions) error {
	switch {
	case o.imdsListen == "" && o.imdsInstance == "":
		return nil
	case o.imdsListen == "" || o.imdsInstance == "":
		return fmt.Errorf("--imds-listen and --imds-instance go together")
	}
	if err := state.CheckID("i", o.imdsInstance); err != nil {
		return fmt.Errorf("--imds-instance: %w", err)
	}
	return checkLoopback("--imds-listen", o.imdsListen, o.allowRemote)
}

// checkListen keeps the emulator on loopback unless explicitly told otherwise:
// it accepts any credentials by default.
func checkListen(addr string, allowRemote bool) error {
	return checkLoopback("--listen", addr, allowRemote)
}

// checkLoopback is checkListen for the address of any flag.
func checkLoopback(flag, addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", flag, err)
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" || allowRemote {
		return nil
	}
	return fmt.Errorf("%s %s is not a loopback address; pass --allow-remote to serve it", flag, addr)
}

func listenAndServe(ctx context.Context, addr string, h http.Handler, stdout io.Writer, log logr.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	// Scripts and tests read this line to learn the port of --listen :0.
	fmt.Fprintf(stdout, "podsg-vpc listening on http://%s\n", ln.Addr())
	log.Info("serving", "address", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	log.Info("stopped")
	return nil
}

func addSearchPermission(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("reading state dir: %w", err)
	}
	if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
		return fmt.Errorf("making the state dir searchable for the RDS databases: %w", err)
	}
	return nil
}
