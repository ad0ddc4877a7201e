package vpccmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/vpc/imds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Instance metadata for a process outside every instance (serve --imds-listen, --imds-instance):
// AWS's vpc-resource-controller reads its region and account from instance metadata when it
// starts, and a controller tried out on the host runs in no instance's namespace. The handler is
// the one every instance namespace serves (package imds); it answers as the named instance.

// imdsStartupLine is what serve prints once the metadata listener is up; tests read the port
// of --imds-listen 127.0.0.1:0 from it.
const imdsStartupLine = "podsg-vpc instance metadata on "

// startIMDS serves instance id's metadata on addr until ctx ends. The instance is read from the
// store on every request, so it may be launched after serve starts (until then, and once it is
// terminated, every path is 404), and options such as ModifyInstanceMetadataOptions apply at once.
func startIMDS(ctx context.Context, addr, id string, store *state.Store, creds imds.CredentialSource, stdout io.Writer, log logr.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for instance metadata: %w", err)
	}
	srv := &http.Server{
		Handler: imds.NewHandler(func() *imds.Instance { return standaloneMetadata(store, id) }, creds),
		// The token reply's hop limit is set on the connection.
		ConnContext:       imds.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(stdout, "%shttp://%s for %s\n", imdsStartupLine, ln.Addr(), id)
	log.Info("serving instance metadata", "address", ln.Addr().String(), "instance", id)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "instance metadata listener stopped")
		}
	}()
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}, nil
}

// standaloneMetadata is instance id as its metadata service describes it, or nil when there is
// no such running instance.
func standaloneMetadata(store *state.Store, id string) *imds.Instance {
	var md *imds.Instance
	_ = store.View(func(tx *state.Tx) error {
		inst, ok := tx.Instance(id)
		if !ok || inst.State != state.InstanceRunning {
			return nil
		}
		mo := inst.MetadataOptions
		md = &imds.Instance{ID: inst.ID, Type: inst.Type, ImageID: inst.ImageID, AvailabilityZone: inst.AvailabilityZone,
			Region: tx.Region(), AccountID: state.AccountID, Options: imds.Options{
				Disabled:            mo.Endpoint() == state.EndpointDisabled,
				TokensRequired:      mo.Tokens() == state.HTTPTokensRequired,
				PutResponseHopLimit: mo.PutResponseHopLimit(),
			}}
		if p := inst.IAMProfile; p != nil {
			md.IAM = &imds.IAM{ProfileARN: p.ProfileARN, ProfileID: p.ProfileID}
		}
		for _, e := range tx.InstanceInterfaces(id) {
			md.Interfaces = append(md.Interfaces, metadataInterface(tx, e))
		}
		return nil
	})
	return md
}

func metadataInterface(tx *state.Tx, e *state.ENI) imds.Interface {
	ni := imds.Interface{MAC: e.MAC, ID: e.ID, SubnetID: e.SubnetID, VPCID: e.VPCID, DeviceNumber: e.Attachment.DeviceIndex,
		IPv4s: e.PrivateIPs, SecurityGroupIDs: e.Groups}
	if s, ok := tx.Subnet(e.SubnetID); ok {
		ni.SubnetCIDR = s.CIDR
	}
	if v, ok := tx.VPC(e.VPCID); ok {
		ni.VPCCIDRs = []string{v.CIDR}
	}
	return ni
}
