#!/usr/bin/env bash
# A scripted awscli session against a local VPC at $ENDPOINT: what a user types, with the
# errors EC2 documents when deleting out of dependency order. Exits non-zero at the first
# answer that is not what EC2 would give.
set -euo pipefail
: "${ENDPOINT:?set ENDPOINT to the local VPC URL}"
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-west-2} AWS_PAGER=""

ec2() { aws --endpoint-url "$ENDPOINT" ec2 "$@"; }
# expect_error CODE ARGS...: the ec2 call must fail with that EC2 error code.
expect_error() {
  local code=$1; shift
  local out
  if out=$(ec2 "$@" 2>&1); then
    echo "FAIL: ec2 $* succeeded, want $code" >&2; exit 1
  fi
  grep -q "($code)" <<<"$out" || { echo "FAIL: ec2 $*: want $code, got: $out" >&2; exit 1; }
  echo "ok: ec2 $1 ... -> $code"
}
# expect_eq WANT GOT WHAT
expect_eq() {
  [ "$1" = "$2" ] || { echo "FAIL: $3: want '$1', got '$2'" >&2; exit 1; }
  echo "ok: $3 = $2"
}

VPC=$(ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId --output text)
SUBNET=$(ec2 create-subnet --vpc-id "$VPC" --cidr-block 10.0.0.0/19 --query Subnet.SubnetId --output text)
expect_eq 8187 "$(ec2 describe-subnets --subnet-ids "$SUBNET" --query 'Subnets[0].AvailableIpAddressCount' --output text)" "free addresses in a /19"
expect_error InvalidSubnet.Range create-subnet --vpc-id "$VPC" --cidr-block 10.1.0.0/24

# The seed tutorial's groups: one for database clients, one for the database.
RDSSG=$(ec2 create-security-group --group-name RDSDbAccessSG --description "Security group to apply to apps that need access to RDS" --vpc-id "$VPC" --query GroupId --output text)
DBSG=$(ec2 create-security-group --group-name RDSDbSG --description "database" --vpc-id "$VPC" --query GroupId --output text)
expect_error InvalidGroup.Duplicate create-security-group --group-name RDSDbSG --description again --vpc-id "$VPC"
# Group names and descriptions are ASCII from a small set, as in EC2.
expect_error InvalidParameterValue create-security-group --group-name "grüne" --description "green" --vpc-id "$VPC"
expect_error InvalidParameterValue create-security-group --group-name green --description "it's green" --vpc-id "$VPC"
# Every new group already allows all egress, as in EC2.
expect_error InvalidPermission.Duplicate authorize-security-group-egress --group-id "$RDSSG" --protocol all --cidr 0.0.0.0/0
ec2 authorize-security-group-ingress --group-id "$DBSG" --protocol tcp --port 5432 --source-group "$RDSSG" >/dev/null
ec2 authorize-security-group-ingress --group-id "$DBSG" --protocol tcp --port 8000-8100 --cidr 10.0.0.0/16 >/dev/null
ec2 authorize-security-group-ingress --group-id "$DBSG" --ip-permissions 'IpProtocol=icmp,FromPort=8,ToPort=-1,IpRanges=[{CidrIp=10.0.0.0/16}]' >/dev/null
expect_error InvalidPermission.Duplicate authorize-security-group-ingress --group-id "$DBSG" --protocol tcp --port 5432 --source-group "$RDSSG"
expect_eq "5432 $RDSSG" "$(ec2 describe-security-groups --group-ids "$DBSG" --query 'SecurityGroups[0].IpPermissions[?FromPort==`5432`].[ToPort,UserIdGroupPairs[0].GroupId]' --output text | tr '\t' ' ')" "db ingress from the client group"
expect_eq 3 "$(ec2 describe-security-group-rules --filters Name=group-id,Values="$DBSG" --query 'length(SecurityGroupRules[?IsEgress==`false`])' --output text)" "ingress rules of the db group"
ec2 revoke-security-group-ingress --group-id "$DBSG" --protocol tcp --port 8000-8100 --cidr 10.0.0.0/16 >/dev/null
expect_error InvalidPermission.NotFound revoke-security-group-ingress --group-id "$DBSG" --protocol tcp --port 8000-8100 --cidr 10.0.0.0/16
expect_eq "$DBSG" "$(ec2 describe-security-groups --filters Name=group-name,Values=RDSDbSG Name=vpc-id,Values="$VPC" --query 'SecurityGroups[0].GroupId' --output text)" "group by name filter"

# A node: an m5.xlarge instance, a trunk ENI attached to it, a branch ENI per pod.
INSTANCE=$(ec2 run-instances --image-id ami-12345678 --instance-type m5.xlarge --subnet-id "$SUBNET" --security-group-ids "$RDSSG" --count 1 \
  --tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=node-1}]' --query 'Instances[0].InstanceId' --output text)
expect_eq running "$(ec2 describe-instances --filters Name=tag:Name,Values=node-1 --query 'Reservations[0].Instances[0].State.Name' --output text)" "instance state"
expect_eq "4 15" "$(ec2 describe-instance-types --instance-types m5.xlarge --query 'InstanceTypes[0].NetworkInfo.[MaximumNetworkInterfaces,Ipv4AddressesPerInterface]' --output text | tr '\t' ' ')" "m5.xlarge network limits"
# Instance metadata options: EC2's defaults, then the hop limit of an EKS node group.
expect_eq "1 optional enabled" "$(ec2 describe-instances --instance-ids "$INSTANCE" --query 'Reservations[0].Instances[0].MetadataOptions.[HttpPutResponseHopLimit,HttpTokens,HttpEndpoint]' --output text | tr '\t' ' ')" "default metadata options"
expect_eq "2 optional" "$(ec2 modify-instance-metadata-options --instance-id "$INSTANCE" --http-put-response-hop-limit 2 --query 'InstanceMetadataOptions.[HttpPutResponseHopLimit,HttpTokens]' --output text | tr '\t' ' ')" "metadata options after the change"
expect_error InvalidParameterValue modify-instance-metadata-options --instance-id "$INSTANCE" --http-put-response-hop-limit 65
expect_eq 2 "$(ec2 describe-instances --instance-ids "$INSTANCE" --query 'Reservations[0].Instances[0].MetadataOptions.HttpPutResponseHopLimit' --output text)" "hop limit after a refused change"
TRUNK=$(ec2 create-network-interface --subnet-id "$SUBNET" --interface-type trunk --description aws-k8s-trunk-eni --groups "$RDSSG" --query NetworkInterface.NetworkInterfaceId --output text)
ec2 attach-network-interface --network-interface-id "$TRUNK" --instance-id "$INSTANCE" --device-index 1 >/dev/null
expect_eq trunk "$(ec2 describe-network-interfaces --filters Name=attachment.instance-id,Values="$INSTANCE" Name=interface-type,Values=trunk --query 'NetworkInterfaces[0].InterfaceType' --output text)" "trunk by filter"
BRANCH=$(ec2 create-network-interface --subnet-id "$SUBNET" --groups "$RDSSG" "$DBSG" --description aws-k8s-branch-eni \
  --tag-specifications 'ResourceType=network-interface,Tags=[{Key=podsg.io/cluster,Value=demo}]' --query NetworkInterface.NetworkInterfaceId --output text)
ASSOC=$(ec2 associate-trunk-interface --branch-interface-id "$BRANCH" --trunk-interface-id "$TRUNK" --vlan-id 7 --query InterfaceAssociation.AssociationId --output text)
# AWS's vpc-resource-controller grants its own account INSTANCE-ATTACH on every trunk and branch.
ACCOUNT=111122223333
TPERM=$(ec2 create-network-interface-permission --network-interface-id "$TRUNK" --aws-account-id "$ACCOUNT" --permission INSTANCE-ATTACH --query InterfacePermission.NetworkInterfacePermissionId --output text)
ec2 create-network-interface-permission --network-interface-id "$BRANCH" --aws-account-id "$ACCOUNT" --permission INSTANCE-ATTACH >/dev/null
expect_eq "granted INSTANCE-ATTACH $TRUNK" "$(ec2 describe-network-interface-permissions --network-interface-permission-ids "$TPERM" --query 'NetworkInterfacePermissions[0].[PermissionState.State,Permission,NetworkInterfaceId]' --output text | tr '\t' ' ')" "trunk permission"
expect_eq 2 "$(ec2 describe-network-interface-permissions --filters Name=network-interface-permission.aws-account-id,Values="$ACCOUNT" --page-size 5 --query 'NetworkInterfacePermissions[].NetworkInterfacePermissionId' --output text | wc -w)" "permissions of the account"
expect_error InvalidParameterValue create-network-interface-permission --network-interface-id "$TRUNK" --aws-account-id 123 --permission INSTANCE-ATTACH
# The trunk is attached: its account uses it, so deleting the permission needs --force.
expect_error InvalidNetworkInterface.InUse delete-network-interface-permission --network-interface-permission-id "$TPERM"
ec2 delete-network-interface-permission --network-interface-permission-id "$TPERM" --force >/dev/null
expect_error InvalidNetworkInterfacePermissionID.NotFound delete-network-interface-permission --network-interface-permission-id "$TPERM"
OTHER=$(ec2 create-network-interface --subnet-id "$SUBNET" --query NetworkInterface.NetworkInterfaceId --output text)
expect_error InvalidParameterValue associate-trunk-interface --branch-interface-id "$OTHER" --trunk-interface-id "$TRUNK" --vlan-id 4095
# An m5.xlarge has device indexes 0 to 3, even with slots free.
expect_error InvalidParameterValue attach-network-interface --network-interface-id "$OTHER" --instance-id "$INSTANCE" --device-index 4
expect_eq "7 $BRANCH" "$(ec2 describe-trunk-interface-associations --filters Name=trunk-interface-association.trunk-interface-id,Values="$TRUNK" --query 'InterfaceAssociations[0].[VlanId,BranchInterfaceId]' --output text | tr '\t' ' ')" "trunk association"
expect_eq "$BRANCH" "$(ec2 describe-network-interfaces --filters Name=tag:podsg.io/cluster,Values=demo --query 'NetworkInterfaces[0].NetworkInterfaceId' --output text)" "branch by tag"
expect_eq 1 "$(ec2 describe-network-interfaces --filters Name=group-id,Values="$DBSG" Name=subnet-id,Values="$SUBNET" --query 'length(NetworkInterfaces)' --output text)" "ENIs in the db group"

# Pagination: awscli follows NextToken by itself; --max-items/--page-size show the pages.
# (EC2's smallest page is 5.)
for _ in 1 2 3 4 5 6 7; do ec2 create-network-interface --subnet-id "$SUBNET" --description page >/dev/null; done
# With text output awscli applies --query to each page, so count the ids it prints.
expect_eq 7 "$(ec2 describe-network-interfaces --filters Name=description,Values=page --page-size 5 --query 'NetworkInterfaces[].NetworkInterfaceId' --output text | wc -w)" "ENIs across pages of 5"
FIRST=$(ec2 describe-network-interfaces --filters Name=description,Values=page --max-items 5 --page-size 5 --output json)
TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["NextToken"])' <<<"$FIRST")
expect_eq 2 "$(ec2 describe-network-interfaces --filters Name=description,Values=page --page-size 5 --starting-token "$TOKEN" --query 'NetworkInterfaces[].NetworkInterfaceId' --output text | wc -w)" "ENIs after the first page"

# Deletion out of order gets EC2's errors; in order it succeeds.
expect_error InvalidNetworkInterface.InUse delete-network-interface --network-interface-id "$BRANCH"
expect_error DependencyViolation delete-security-group --group-id "$DBSG"
expect_error DependencyViolation delete-security-group --group-id "$RDSSG"
expect_error DependencyViolation delete-subnet --subnet-id "$SUBNET"
ec2 disassociate-trunk-interface --association-id "$ASSOC" >/dev/null
expect_error InvalidAssociationID.NotFound disassociate-trunk-interface --association-id "$ASSOC"
ec2 delete-network-interface --network-interface-id "$BRANCH"
expect_eq 0 "$(ec2 describe-network-interface-permissions --filters Name=network-interface-permission.network-interface-id,Values="$BRANCH" --query 'length(NetworkInterfacePermissions)' --output text)" "permissions of a deleted branch"
expect_error InvalidNetworkInterfaceID.NotFound delete-network-interface --network-interface-id "$BRANCH"
expect_error InvalidNetworkInterface.InUse delete-network-interface --network-interface-id "$TRUNK"
ec2 terminate-instances --instance-ids "$INSTANCE" >/dev/null
for eni in $(ec2 describe-network-interfaces --filters Name=subnet-id,Values="$SUBNET" --query 'NetworkInterfaces[].NetworkInterfaceId' --output text); do
  ec2 delete-network-interface --network-interface-id "$eni"
done
expect_error DependencyViolation delete-security-group --group-id "$RDSSG" # the db group's rule still refers to it
ec2 delete-security-group --group-id "$DBSG"
ec2 delete-security-group --group-id "$RDSSG"
expect_error DependencyViolation delete-vpc --vpc-id "$VPC"
ec2 delete-subnet --subnet-id "$SUBNET"
ec2 delete-vpc --vpc-id "$VPC"
expect_error InvalidVpcID.NotFound describe-vpcs --vpc-ids "$VPC"
echo "awscli session: all answers as EC2 documents"
