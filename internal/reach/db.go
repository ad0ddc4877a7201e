package reach

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/cloud"
)

// DBPrefix starts an endpoint that names an RDS database instance: db/ID. Its endpoint
// hostname (ID.LABEL.REGION.rds.amazonaws.com) names it too.
const DBPrefix = "db/"

// rdsHostSuffix ends every RDS endpoint hostname.
const rdsHostSuffix = ".rds.amazonaws.com"

// DBInstance is what reach needs of an RDS instance.
type DBInstance struct {
	ID, Hostname string
	Port         int
	VPCID        string
}

// DBs lists RDS database instances (internal/cli reads them from the RDS API).
type DBs interface {
	DBInstances(ctx context.Context) ([]DBInstance, error)
}

// LocalVPCDBTag is the tag the local VPC puts on a database's network interface, with the
// value rds:ID (internal/vpc/dataplane/topo.AttachTag). AWS does not tag an RDS interface
// with its instance: there, name the database by its address.
const LocalVPCDBTag = "podsg:attach"

// IsDB reports whether spec names a database: db/ID or an RDS endpoint hostname.
func IsDB(spec string) bool {
	return strings.HasPrefix(spec, DBPrefix) || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(spec, ".")), rdsHostSuffix)
}

// resolveDB finds the database instance spec names and the network interface its traffic
// arrives at, whose groups judge it.
func resolveDB(ctx context.Context, ec2 EC2, dbs DBs, spec string) ([]Endpoint, error) {
	if dbs == nil {
		return nil, fmt.Errorf("%s: naming a database needs the RDS API (the local VPC's, --ec2-endpoint)", spec)
	}
	all, err := dbs.DBInstances(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: listing database instances: %w", spec, err)
	}
	id, host := strings.TrimPrefix(spec, DBPrefix), ""
	if !strings.HasPrefix(spec, DBPrefix) {
		id, host = "", strings.ToLower(strings.TrimSuffix(spec, "."))
	}
	i := slices.IndexFunc(all, func(d DBInstance) bool {
		return id != "" && d.ID == id || host != "" && strings.EqualFold(d.Hostname, host)
	})
	if id == "" && host == "" || i < 0 {
		var names []string
		for _, d := range all {
			names = append(names, DBPrefix+d.ID)
		}
		return nil, fmt.Errorf("%s: no such database instance (there are: %s)", spec, orNone(strings.Join(names, ", ")))
	}
	db := all[i]
	enis, err := ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{LocalVPCDBTag: "rds:" + db.ID}})
	if err != nil {
		return nil, fmt.Errorf("%s: looking up its network interface: %w", spec, err)
	}
	if len(enis) != 1 {
		return nil, fmt.Errorf("%s: %d network interfaces are tagged %s=rds:%s, want 1 (on AWS, name the database by its private address)",
			spec, len(enis), LocalVPCDBTag, db.ID)
	}
	ip, err := netip.ParseAddr(enis[0].PrivateIP)
	if err != nil {
		return nil, fmt.Errorf("%s: %s has no private address", spec, enis[0].ID)
	}
	return []Endpoint{{Spec: DBPrefix + db.ID, IP: ip, ENI: enis[0]}}, nil
}
