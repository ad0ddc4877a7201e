// Package rdsapi serves the part of the RDS Query API (version 2014-10-31, awsquery protocol)
// that the seed tutorial uses — create, describe and delete a PostgreSQL instance — on the
// local VPC's endpoint, backed by package rds (a real PostgreSQL in its own namespace with an
// ENI under the instance's security groups).
package rdsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/rds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Version and Namespace of the RDS API.
const (
	Version   = "2014-10-31"
	Namespace = "http://rds.amazonaws.com/doc/2014-10-31/"
)

// DBs is what the handlers need of the database manager.
type DBs interface {
	Create(ctx context.Context, in rds.CreateInput) (*rds.DBInstance, error)
	Describe(id string) ([]*rds.DBInstance, error)
	Delete(ctx context.Context, id string) (*rds.DBInstance, error)
	Modify(ctx context.Context, id string, in rds.ModifyInput) (*rds.DBInstance, error)
}

// API holds the handlers.
type API struct {
	store  *state.Store
	dbs    DBs
	region string
}

// Service returns the RDS service for the server, around dbs.
func Service(store *state.Store, dbs DBs) *query.Service {
	a := &API{store: store, dbs: dbs, region: store.Region()}
	r := query.NewRouter()
	r.Handle("CreateDBInstance", a.create)
	r.Handle("DescribeDBInstances", a.describe)
	r.Handle("DeleteDBInstance", a.delete)
	r.Handle("ModifyDBInstance", a.modify)
	return &query.Service{Name: "AmazonRDS", Version: Version, Namespace: Namespace, AWSQuery: true, Router: r}
}

type dbResult struct {
	query.Result
	DBInstance dbInstanceXML `xml:"DBInstance"`
}

func (a *API) create(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	id, err := p.Required("DBInstanceIdentifier")
	if err != nil {
		return nil, err
	}
	if engine, err := p.Required("Engine"); err != nil {
		return nil, err
	} else if engine != "postgres" {
		return nil, apierr.InvalidValue("Invalid DB engine: %s. The local VPC runs PostgreSQL only (engine postgres).", engine)
	}
	in := rds.CreateInput{ID: id, MasterUsername: p.String("MasterUsername"), MasterPassword: p.String("MasterUserPassword"),
		DBName: p.String("DBName"), InstanceClass: p.String("DBInstanceClass"), SecurityGroupIDs: p.List("VpcSecurityGroupIds.VpcSecurityGroupId")}
	if in.MasterUsername == "" {
		return nil, apierr.Missing("MasterUsername")
	}
	if len(in.MasterPassword) < 8 {
		return nil, apierr.InvalidValue("The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters.")
	}
	if v := p.String("Port"); v != "" {
		if in.Port, err = strconv.Atoi(v); err != nil || in.Port < 1150 || in.Port > 65535 {
			return nil, apierr.InvalidValue("Invalid port %q: PostgreSQL instances listen on 1150-65535.", v)
		}
	}
	if in.IAMAuth, _, err = p.Bool("EnableIAMDatabaseAuthentication"); err != nil {
		return nil, err
	}
	if in.SubnetID, err = a.pickSubnet(in.SecurityGroupIDs); err != nil {
		return nil, err
	}
	db, err := a.dbs.Create(ctx, in)
	switch {
	case errors.Is(err, rds.ErrExists):
		return nil, &apierr.Error{Code: "DBInstanceAlreadyExists", Message: "DB instance already exists", Status: http.StatusBadRequest}
	case err != nil:
		return nil, iamUnavailable(err)
	}
	return &dbResult{DBInstance: a.render(db)}, nil
}

// modify is ModifyDBInstance: the local VPC changes IAM database authentication, at once
// (ApplyImmediately or not: the change needs no restart, on RDS neither).
func (a *API) modify(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("DBInstanceIdentifier")
	if err != nil {
		return nil, err
	}
	var in rds.ModifyInput
	if v, ok, err := req.Params.Bool("EnableIAMDatabaseAuthentication"); err != nil {
		return nil, err
	} else if ok {
		in.IAMAuth = &v
	}
	db, err := a.dbs.Modify(ctx, id, in)
	switch {
	case errors.Is(err, rds.ErrNotFound):
		return nil, notFound(id)
	case err != nil:
		return nil, iamUnavailable(err)
	}
	return &dbResult{DBInstance: a.render(db)}, nil
}

// iamUnavailable is the API error of a server without token checking.
func iamUnavailable(err error) error {
	if errors.Is(err, rds.ErrIAMAuthUnavailable) {
		return apierr.Combination("%v. The local VPC checks IAM connect tokens only on its netns data path, with libpam-script installed.", err)
	}
	return err
}

// pickSubnet chooses where the database's ENI goes. The local VPC models no DB subnet
// groups: the instance lands in the first subnet (by id) of its security groups' VPC.
func (a *API) pickSubnet(groups []string) (string, error) {
	if len(groups) == 0 {
		return "", apierr.Missing("VpcSecurityGroupIds")
	}
	var subnet string
	err := a.store.View(func(tx *state.Tx) error {
		g, ok := tx.SecurityGroup(groups[0])
		if !ok {
			return &apierr.Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("Invalid security group, groupId= %s, groupName=.", groups[0]), Status: http.StatusBadRequest}
		}
		var ids []string
		for _, s := range tx.Subnets() {
			if s.VPCID == g.VPCID {
				ids = append(ids, s.ID)
			}
		}
		if len(ids) == 0 {
			return &apierr.Error{Code: "InvalidVPCNetworkStateFault", Message: "The VPC " + g.VPCID + " has no subnet for the DB instance.", Status: http.StatusBadRequest}
		}
		slices.Sort(ids)
		subnet = ids[0]
		return nil
	})
	return subnet, err
}

type describeResult struct {
	query.Result
	DBInstances []dbInstanceXML `xml:"DBInstances>DBInstance"`
}

func (a *API) describe(_ context.Context, req *query.Request) (query.Response, error) {
	dbs, err := a.dbs.Describe(req.Params.String("DBInstanceIdentifier"))
	if errors.Is(err, rds.ErrNotFound) {
		return nil, notFound(req.Params.String("DBInstanceIdentifier"))
	}
	if err != nil {
		return nil, err
	}
	out := &describeResult{}
	for _, db := range dbs {
		out.DBInstances = append(out.DBInstances, a.render(db))
	}
	return out, nil
}

func (a *API) delete(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("DBInstanceIdentifier")
	if err != nil {
		return nil, err
	}
	db, err := a.dbs.Delete(ctx, id)
	if errors.Is(err, rds.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	return &dbResult{DBInstance: a.render(db)}, nil
}

func notFound(id string) *apierr.Error {
	return &apierr.Error{Code: "DBInstanceNotFound", Message: "DBInstance " + id + " not found.", Status: http.StatusNotFound}
}
