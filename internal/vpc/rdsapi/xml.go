package rdsapi

import (
	"fmt"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/rds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// dbInstanceXML is the DBInstance shape, with the fields a client of a PostgreSQL instance
// reads: identity, status, endpoint, engine, network placement and security groups.
type dbInstanceXML struct {
	DBInstanceIdentifier string `xml:"DBInstanceIdentifier"`
	DBInstanceArn        string `xml:"DBInstanceArn"`
	DBInstanceClass      string `xml:"DBInstanceClass"`
	DBInstanceStatus     string `xml:"DBInstanceStatus"`
	Engine               string `xml:"Engine"`
	EngineVersion        string `xml:"EngineVersion"`
	MasterUsername       string `xml:"MasterUsername"`
	DBName               string `xml:"DBName,omitempty"`
	Endpoint             *struct {
		Address string `xml:"Address"`
		Port    int    `xml:"Port"`
	} `xml:"Endpoint,omitempty"`
	DbInstancePort     int    `xml:"DbInstancePort"`
	DbiResourceID      string `xml:"DbiResourceId"`
	IAMAuthEnabled     bool   `xml:"IAMDatabaseAuthenticationEnabled"`
	AvailabilityZone   string `xml:"AvailabilityZone"`
	InstanceCreateTime string `xml:"InstanceCreateTime"`
	PubliclyAccessible bool   `xml:"PubliclyAccessible"`
	AllocatedStorage   int    `xml:"AllocatedStorage"`
	VpcSecurityGroups  []struct {
		VpcSecurityGroupID string `xml:"VpcSecurityGroupId"`
		Status             string `xml:"Status"`
	} `xml:"VpcSecurityGroups>VpcSecurityGroupMembership"`
	DBSubnetGroup struct {
		DBSubnetGroupName string `xml:"DBSubnetGroupName"`
		VpcID             string `xml:"VpcId"`
		Subnets           []struct {
			SubnetIdentifier string `xml:"SubnetIdentifier"`
		} `xml:"Subnets>Subnet"`
	} `xml:"DBSubnetGroup"`
}

func (a *API) render(db *rds.DBInstance) dbInstanceXML {
	x := dbInstanceXML{
		DBInstanceIdentifier: db.ID, DBInstanceArn: fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", a.region, state.AccountID, db.ID),
		DBInstanceClass: db.InstanceClass, DBInstanceStatus: db.Status, Engine: db.Engine, EngineVersion: db.EngineVersion,
		MasterUsername: db.MasterUsername, DBName: db.DBName, DbInstancePort: db.Port, AvailabilityZone: db.AvailabilityZone,
		InstanceCreateTime: query.Time(db.CreatedAt), AllocatedStorage: 20, DbiResourceID: db.ResourceID, IAMAuthEnabled: db.IAMAuth,
	}
	if db.Status == rds.StatusAvailable && db.Hostname != "" {
		x.Endpoint = &struct {
			Address string `xml:"Address"`
			Port    int    `xml:"Port"`
		}{db.Hostname, db.Port}
	}
	for _, g := range db.SecurityGroupIDs {
		x.VpcSecurityGroups = append(x.VpcSecurityGroups, struct {
			VpcSecurityGroupID string `xml:"VpcSecurityGroupId"`
			Status             string `xml:"Status"`
		}{g, "active"})
	}
	x.DBSubnetGroup.DBSubnetGroupName, x.DBSubnetGroup.VpcID = "default", db.VPCID
	x.DBSubnetGroup.Subnets = append(x.DBSubnetGroup.Subnets, struct {
		SubnetIdentifier string `xml:"SubnetIdentifier"`
	}{db.SubnetID})
	return x
}
