package rdsapi_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/vpc/resolver"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/vpc/ec2api"
	"github.com/podsg/podsg/internal/vpc/idgen"
	"github.com/podsg/podsg/internal/vpc/query"
	vpcrds "github.com/podsg/podsg/internal/vpc/rds"
	"github.com/podsg/podsg/internal/vpc/rdsapi"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// fakeDBs stands in for the PostgreSQL manager, which needs root and namespaces; the wire
// format is what this test is about.
type fakeDBs struct {
	dbs  map[string]*vpcrds.DBInstance
	last vpcrds.CreateInput
	// noIAM is a server that cannot check connect tokens.
	noIAM bool
}

func (f *fakeDBs) Create(_ context.Context, in vpcrds.CreateInput) (*vpcrds.DBInstance, error) {
	if _, ok := f.dbs[in.ID]; ok {
		return nil, vpcrds.ErrExists
	}
	if in.IAMAuth && f.noIAM {
		return nil, vpcrds.ErrIAMAuthUnavailable
	}
	f.last = in
	db := &vpcrds.DBInstance{ID: in.ID, Status: vpcrds.StatusAvailable, Engine: "postgres", EngineVersion: "15", InstanceClass: "db.t3.micro",
		Address: "10.0.1.4", Hostname: resolver.RDSEndpoint(in.ID, vpctest.Region), Port: 5432, SubnetID: in.SubnetID, VPCID: "vpc-x", SecurityGroupIDs: in.SecurityGroupIDs,
		MasterUsername: in.MasterUsername, CreatedAt: time.Unix(0, 0), ResourceID: "db-FAKE" + in.ID, IAMAuth: in.IAMAuth}
	f.dbs[in.ID] = db
	return db, nil
}

func (f *fakeDBs) Describe(id string) ([]*vpcrds.DBInstance, error) {
	if id == "" {
		var out []*vpcrds.DBInstance
		for _, db := range f.dbs {
			out = append(out, db)
		}
		return out, nil
	}
	if db, ok := f.dbs[id]; ok {
		return []*vpcrds.DBInstance{db}, nil
	}
	return nil, vpcrds.ErrNotFound
}

func (f *fakeDBs) Modify(_ context.Context, id string, in vpcrds.ModifyInput) (*vpcrds.DBInstance, error) {
	db, ok := f.dbs[id]
	if !ok {
		return nil, vpcrds.ErrNotFound
	}
	if in.IAMAuth != nil {
		db.IAMAuth = *in.IAMAuth
	}
	return db, nil
}

func (f *fakeDBs) Delete(_ context.Context, id string) (*vpcrds.DBInstance, error) {
	db, ok := f.dbs[id]
	if !ok {
		return nil, vpcrds.ErrNotFound
	}
	delete(f.dbs, id)
	db.Status = vpcrds.StatusDeleting
	return db, nil
}

// TestRDSOverTheSDK drives the RDS actions with aws-sdk-go-v2's RDS client on the same endpoint
// as EC2, as `aws rds --endpoint-url` does.
func TestRDSOverTheSDK(t *testing.T) {
	ctx := t.Context()
	store, err := state.Open(ctx, state.Options{Region: vpctest.Region, IDs: idgen.NewSeeded(1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	dbs := &fakeDBs{dbs: map[string]*vpcrds.DBInstance{}}
	router := query.NewRouter()
	ec2api.New(store).Register(router)
	srv, err := server.New(server.Options{Router: router, Registry: prometheus.NewRegistry(), Log: logr.Discard(),
		Services: []*query.Service{rdsapi.Service(store, dbs)}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	ec2c := vpctest.NewClient(hs.URL, "", "")
	rdsc := rds.New(rds.Options{Region: vpctest.Region, BaseEndpoint: aws.String(hs.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})

	vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for _, cidr := range []string{"10.0.2.0/24", "10.0.1.0/24"} {
		s, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr)})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, *s.Subnet.SubnetId)
	}
	sg, err := ec2c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: vpc.Vpc.VpcId, GroupName: aws.String("db"), Description: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}

	created, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("demo"), Engine: aws.String("postgres"),
		DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("postgres"), MasterUserPassword: aws.String("secretpass"),
		VpcSecurityGroupIds: []string{*sg.GroupId}})
	if err != nil {
		t.Fatal(err)
	}
	db := created.DBInstance
	if aws.ToString(db.DBInstanceStatus) != "available" || aws.ToString(db.Endpoint.Address) != resolver.RDSEndpoint("demo", vpctest.Region) || aws.ToInt32(db.Endpoint.Port) != 5432 ||
		len(db.VpcSecurityGroups) != 1 || aws.ToString(db.VpcSecurityGroups[0].VpcSecurityGroupId) != *sg.GroupId {
		t.Fatalf("CreateDBInstance = %+v", db)
	}
	if want := min(subnets[0], subnets[1]); dbs.last.SubnetID != want {
		t.Errorf("placed in subnet %s, want the first by id, %s", dbs.last.SubnetID, want)
	}
	if aws.ToString(db.DbiResourceId) != "db-FAKEdemo" || aws.ToBool(db.IAMDatabaseAuthenticationEnabled) {
		t.Fatalf("CreateDBInstance: DbiResourceId %q, IAM auth %v; want db-FAKEdemo, off", aws.ToString(db.DbiResourceId), aws.ToBool(db.IAMDatabaseAuthenticationEnabled))
	}
	desc, err := rdsc.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("demo")})
	if err != nil || len(desc.DBInstances) != 1 || aws.ToString(desc.DBInstances[0].Endpoint.Address) != resolver.RDSEndpoint("demo", vpctest.Region) {
		t.Fatalf("DescribeDBInstances = %+v, %v", desc, err)
	}
	mod, err := rdsc.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String("demo"), EnableIAMDatabaseAuthentication: aws.Bool(true), ApplyImmediately: aws.Bool(true)})
	if err != nil || !aws.ToBool(mod.DBInstance.IAMDatabaseAuthenticationEnabled) || !dbs.dbs["demo"].IAMAuth {
		t.Fatalf("ModifyDBInstance to enable IAM auth = %+v, %v", mod, err)
	}
	iam, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("iam"), Engine: aws.String("postgres"),
		DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("postgres"), MasterUserPassword: aws.String("secretpass"),
		VpcSecurityGroupIds: []string{*sg.GroupId}, EnableIAMDatabaseAuthentication: aws.Bool(true)})
	if err != nil || !dbs.last.IAMAuth || !aws.ToBool(iam.DBInstance.IAMDatabaseAuthenticationEnabled) {
		t.Fatalf("CreateDBInstance with IAM auth = %+v, %v (manager got %+v)", iam, err, dbs.last)
	}

	errCode := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}
	tests := map[string]struct {
		call func() error
		code string
	}{
		"duplicate": {func() error {
			_, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("demo"), Engine: aws.String("postgres"),
				DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("u"), MasterUserPassword: aws.String("secretpass"), VpcSecurityGroupIds: []string{*sg.GroupId}})
			return err
		}, "DBInstanceAlreadyExists"},
		"other engine": {func() error {
			_, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("m"), Engine: aws.String("mysql"),
				DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("u"), MasterUserPassword: aws.String("secretpass"), VpcSecurityGroupIds: []string{*sg.GroupId}})
			return err
		}, "InvalidParameterValue"},
		"short password": {func() error {
			_, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("p"), Engine: aws.String("postgres"),
				DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("u"), MasterUserPassword: aws.String("short"), VpcSecurityGroupIds: []string{*sg.GroupId}})
			return err
		}, "InvalidParameterValue"},
		"unknown group": {func() error {
			_, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("g"), Engine: aws.String("postgres"),
				DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("u"), MasterUserPassword: aws.String("secretpass"), VpcSecurityGroupIds: []string{"sg-0123456789abcdef0"}})
			return err
		}, "InvalidParameterValue"},
		"IAM auth where tokens cannot be checked": {func() error {
			dbs.noIAM = true
			defer func() { dbs.noIAM = false }()
			_, err := rdsc.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("n"), Engine: aws.String("postgres"),
				DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("u"), MasterUserPassword: aws.String("secretpass"),
				VpcSecurityGroupIds: []string{*sg.GroupId}, EnableIAMDatabaseAuthentication: aws.Bool(true)})
			return err
		}, "InvalidParameterCombination"},
		"modify unknown": {func() error {
			_, err := rdsc.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String("nope"), EnableIAMDatabaseAuthentication: aws.Bool(true)})
			return err
		}, "DBInstanceNotFound"},
		"describe unknown": {func() error {
			_, err := rdsc.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("nope")})
			return err
		}, "DBInstanceNotFound"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := errCode(tc.call()); got != tc.code {
				t.Fatalf("error code %q, want %q", got, tc.code)
			}
		})
	}

	deleted, err := rdsc.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String("demo"), SkipFinalSnapshot: aws.Bool(true)})
	if err != nil || aws.ToString(deleted.DBInstance.DBInstanceStatus) != "deleting" {
		t.Fatalf("DeleteDBInstance = %+v, %v", deleted, err)
	}
	if _, err := rdsc.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String("demo"), SkipFinalSnapshot: aws.Bool(true)}); errCode(err) != "DBInstanceNotFound" {
		t.Fatalf("second delete: %v", err)
	}
}
